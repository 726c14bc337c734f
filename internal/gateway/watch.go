package gateway

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchDebounce is how long the watcher lets a burst of events settle before it reads the file,
// counted from the first event of the burst.
const watchDebounce = 200 * time.Millisecond

// WatchFile calls reload when the content of path changes. It watches the directory, not the
// file, because editors and config-management tools replace files by rename (and Kubernetes swaps
// a symlinked directory), which ends a watch on the file itself. Only events for the file's own
// name and for Kubernetes' "..data" swap entries count; the first of a burst starts a 200ms timer
// that later events do not restart, so a log written beside the config cannot postpone a reload
// and a file rewritten without pause is still picked up. The content is then hashed, and reload
// runs only when it changed.
func WatchFile(ctx context.Context, path string, logger *slog.Logger, reload func()) error {
	return watchFile(ctx, path, logger, reload, watchHooks{})
}

// watchHooks let tests observe the watcher's decisions instead of sleeping and hoping.
type watchHooks struct {
	checked func(changed bool) // after every content check
	stopped func()             // when the goroutine returns
}

func watchFile(ctx context.Context, path string, logger *slog.Logger, reload func(), hooks watchHooks) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("creating file watcher: %w", err)
	}
	dir, base := filepath.Split(abs)
	if err := w.Add(dir); err != nil {
		_ = w.Close()
		return fmt.Errorf("watching %s: %w", dir, err)
	}
	// The baseline is taken before returning: taken inside the goroutine, it could already hold a
	// change the caller made right after WatchFile returned, and that change would never reload.
	last := fileHash(abs)
	go func() {
		defer func() {
			if hooks.stopped != nil {
				hooks.stopped()
			}
		}()
		defer w.Close()
		defer func() {
			if p := recover(); p != nil {
				logger.Error("config watcher stopped after a panic; reload with SIGHUP", "panic", p)
			}
		}()
		var timer *time.Timer
		defer func() {
			if timer != nil {
				timer.Stop()
			}
		}()
		var due <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				// A pending check is not pushed back: it fires at most watchDebounce after the
				// first relevant event, however busy the directory is.
				if due == nil && relevantEvent(ev, base) {
					timer = time.NewTimer(watchDebounce)
					due = timer.C
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				logger.Warn("config watcher", "error", err.Error())
			case <-due:
				due = nil
				// An empty hash means the file is missing mid-replace; the Create that ends the
				// replace starts another check.
				h := fileHash(abs)
				changed := h != last && h != ""
				if changed {
					last = h
					reload()
				}
				if hooks.checked != nil {
					hooks.checked(changed)
				}
			}
		}
	}()
	return nil
}

// relevantEvent reports whether ev may have changed the config file named base: an event on that
// name (write, create, rename over it) or on a Kubernetes ConfigMap entry ("..data" and the
// timestamped "..2026_11_26_..." directories it points to, through which the file is a symlink).
// A chmod alone changes no content.
func relevantEvent(ev fsnotify.Event, base string) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	name := filepath.Base(ev.Name)
	return name == base || strings.HasPrefix(name, "..")
}

func fileHash(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return string(sum[:])
}
