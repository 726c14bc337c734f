package gateway

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

const (
	// watchDebounce is how long the config file must be quiet before the watcher reads it: a
	// writer that truncates and then writes in several pieces is read once it is done, not
	// half-way through.
	watchDebounce = 200 * time.Millisecond
	// watchMaxDelay bounds how long a file rewritten without pause (more often than
	// watchDebounce) may postpone the read, counted from the first event of the burst.
	watchMaxDelay = time.Second
)

// WatchFile calls reload when the content of path changes. It watches directories, not the file,
// because editors and config-management tools replace files by rename (and Kubernetes swaps a
// symlinked directory), which ends a watch on the file itself. When path goes through symlinks
// (a config linked in from a deploy tree, a ConfigMap volume), the directory of every link on the
// way and the directory of the file it resolves to are watched too, and the watches move when a
// link is changed to point elsewhere.
//
// Only events for the file and for the links on its way count, so a log written beside the config
// neither reads the config nor postpones a reload. The file is read once it has been quiet for
// 200ms, or 1s after the first event if it keeps changing; reload runs only when its content
// changed. An empty file (truncated by a writer that has not written yet) is not reloaded: the
// write that fills it is another event.
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
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("creating file watcher: %w", err)
	}
	w := &configWatch{path: abs, fsw: fw, dirs: map[string]bool{}}
	if err := w.follow(); err != nil {
		// Without the file's own directory nothing would be seen; without a link's, only that
		// link being moved would be missed.
		if !w.dirs[filepath.Dir(w.target)] {
			_ = fw.Close()
			return err
		}
		logger.Warn("config watcher: a symlink on the way to the config file is not watched; reload with SIGHUP after moving it", "error", err.Error())
	}
	// The baseline is taken before returning: taken inside the goroutine, it could already hold a
	// change the caller made right after WatchFile returned, and that change would never reload.
	last, _ := readHash(abs)
	go func() {
		defer func() {
			if hooks.stopped != nil {
				hooks.stopped()
			}
		}()
		defer fw.Close()
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
		// first is the first event of the burst not yet read, zero when none is. A burst ends only
		// with a read of the file; one that found it missing or empty stays open, so the event
		// that fills the file reads it at once if watchMaxDelay has passed: a writer that rewrites
		// the file periodically is otherwise read at the same point of its cycle, which can be
		// between its truncation and its write, every time.
		var first time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-fw.Events:
				if !ok {
					return
				}
				if !w.relevant(ev) {
					continue
				}
				// A link on the way may now point elsewhere: watch where the file is now, so
				// that its next change is seen too.
				if err := w.follow(); err != nil {
					logger.Warn("config watcher", "error", err.Error())
				}
				// Each relevant event pushes the read back to watchDebounce after it, but not
				// past watchMaxDelay after the first of the burst.
				now := time.Now()
				if first.IsZero() {
					first = now
				}
				wait := max(min(watchDebounce, first.Add(watchMaxDelay).Sub(now)), 0)
				if timer == nil {
					timer = time.NewTimer(wait)
				} else {
					// Since Go 1.23 a Reset timer never delivers a value from before the Reset.
					timer.Reset(wait)
				}
				due = timer.C
			case err, ok := <-fw.Errors:
				if !ok {
					return
				}
				logger.Warn("config watcher", "error", err.Error())
			case <-due:
				due = nil
				// A missing file is mid-replace, and an empty one truncated by a writer that has
				// not written yet; the event that ends either starts another check.
				h, size := readHash(abs)
				changed := h != last && size > 0
				switch {
				case h != "" && size == 0:
					logger.Info("config file is empty; waiting for it to be written", "path", abs)
				case h != "":
					first = time.Time{}
				}
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

// configWatch is what the watcher knows of the path to the config file: the symlinks on the way
// and the file they lead to, and the directories watched for them.
type configWatch struct {
	path   string // absolute, as given
	target string // the file path leads to, resolved
	fsw    *fsnotify.Watcher
	// names are the paths whose events count: the file the config path resolves to and every
	// symlink on the way, each in its resolved directory (the form events are named in).
	names map[string]bool
	dirs  map[string]bool // watched
}

// follow resolves the path again and moves the watches to the directories of what it now goes
// through. It keeps every watch it could add and reports the directories it could not watch.
func (w *configWatch) follow() error {
	target, links := resolveLinks(w.path)
	names := map[string]bool{target: true}
	dirs := map[string]bool{filepath.Dir(target): true}
	for _, l := range links {
		names[l] = true
		dirs[filepath.Dir(l)] = true
	}
	var errs []string
	for d := range dirs {
		if w.dirs[d] {
			continue
		}
		if err := w.fsw.Add(d); err != nil {
			errs = append(errs, fmt.Sprintf("watching %s: %v", d, err))
			delete(dirs, d)
		}
	}
	for d := range w.dirs {
		if !dirs[d] {
			// The watch may already be gone with its directory (an old ConfigMap version).
			_ = w.fsw.Remove(d)
		}
	}
	w.target, w.names, w.dirs = target, names, dirs
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// relevant reports whether ev may have changed the config file: an event on the file (write,
// create, rename over it), on the file it resolves to, or on a symlink on the way to it (a
// Kubernetes "..data" swap, a deploy tree's "current" link moved to a new release). A chmod alone
// changes no content.
func (w *configWatch) relevant(ev fsnotify.Event) bool {
	return ev.Op != fsnotify.Chmod && w.names[filepath.Clean(ev.Name)]
}

// maxLinks bounds the symlinks followed while resolving, so a loop ends (Linux stops at 40).
const maxLinks = 40

// resolveLinks resolves path (absolute) one component at a time, as the kernel does, and returns
// the file it leads to and every symlink met on the way, each as the path of the link in its
// resolved directory. Unlike filepath.EvalSymlinks it reports the links in between: for a
// ConfigMap item at conf/portico.yaml, "conf" links to "..data/conf" and "..data" to the current
// version, and a swap of "..data" is the only event an update makes. A component that does not
// exist (a file mid-replace) is kept as written.
func resolveLinks(path string) (target string, links []string) {
	var walk func(dir, rest string) string
	walk = func(dir, rest string) string {
		for _, part := range strings.Split(rest, string(filepath.Separator)) {
			switch part {
			case "", ".":
				continue
			case "..":
				dir = filepath.Dir(dir)
				continue
			}
			next := filepath.Join(dir, part)
			fi, err := os.Lstat(next)
			if err != nil || fi.Mode()&fs.ModeSymlink == 0 || len(links) >= maxLinks {
				dir = next
				continue
			}
			links = append(links, next)
			dest, err := os.Readlink(next)
			switch {
			case err != nil:
				dir = next
			case filepath.IsAbs(dest):
				vol := filepath.VolumeName(dest)
				dir = walk(vol+string(filepath.Separator), dest[len(vol):])
			default:
				dir = walk(dir, dest)
			}
		}
		return dir
	}
	vol := filepath.VolumeName(path)
	return walk(vol+string(filepath.Separator), path[len(vol):]), links
}

// readHash returns a hash of the file's content and its size; the hash is empty when the file
// cannot be read.
func readHash(path string) (hash string, size int) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", 0
	}
	sum := sha256.Sum256(b)
	return string(sum[:]), len(b)
}
