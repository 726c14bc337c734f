package gateway

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// WatchFile calls reload when the content of path changes. It watches the directory, not the
// file, because editors and config-management tools replace files by rename (and Kubernetes swaps
// a symlinked directory), which ends a watch on the file itself. Any event in the directory is
// followed, after 200ms of quiet, by a content check, so bursts cause one reload and unrelated
// files cause none.
func WatchFile(ctx context.Context, path string, logger *slog.Logger, reload func()) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("creating file watcher: %w", err)
	}
	if err := w.Add(filepath.Dir(abs)); err != nil {
		_ = w.Close()
		return fmt.Errorf("watching %s: %w", filepath.Dir(abs), err)
	}
	go func() {
		defer w.Close()
		defer func() {
			if p := recover(); p != nil {
				logger.Error("config watcher stopped after a panic; reload with SIGHUP", "panic", p)
			}
		}()
		last := fileHash(abs)
		var debounce <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ev.Op != fsnotify.Chmod {
					debounce = time.After(200 * time.Millisecond)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				logger.Warn("config watcher", "error", err.Error())
			case <-debounce:
				debounce = nil
				if h := fileHash(abs); h != last && h != "" {
					last = h
					reload()
				}
			}
		}
	}()
	return nil
}

func fileHash(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return string(sum[:])
}
