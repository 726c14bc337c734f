package gateway

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/portico-gw/portico/internal/confval"
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

// WatchFile calls reload when the content of the config file at path changes, or the content of
// a file the config in force reads (inputs: certificates, keys, CA bundles, consumers' key files,
// PEM keys), so that a certificate renewed on disk is served without a SIGHUP. It watches
// directories, not files, because editors and config-management tools replace files by rename
// (and Kubernetes swaps a symlinked directory), which ends a watch on the file itself. When a path
// goes through symlinks (a config linked in from a deploy tree, a ConfigMap or Secret volume), the
// directory of every link on the way and the directory of the file it resolves to are watched
// too, and the watches move when a link is changed to point elsewhere.
//
// Only events for the watched files and for the links on their way count, so a log written beside
// the config neither reads the config nor postpones a reload. The files are read once they have
// been quiet for 200ms, or 1s after the first event if they keep changing; reload runs only when
// a content changed. An empty config file (truncated by a writer that has not written yet) is not
// reloaded: the write that fills it is another event. A change to an input is kept for the next
// reload while the config file is missing or empty.
func WatchFile(ctx context.Context, path string, logger *slog.Logger, reload func(), inputs Inputs) error {
	return watchFile(ctx, path, logger, reload, inputs, watchHooks{})
}

// Inputs tell the watcher which files besides the config file to watch.
type Inputs struct {
	// Files returns the files the config in force reads, each with the hash (readHash) of the
	// content its build saw (Gateway.InputFiles). Nil watches the config file alone.
	Files func() map[string]string
	// Applied delivers after a config is applied, by this watcher's reload or by a SIGHUP, so
	// that the watches follow a config that names other files (Gateway.Applied).
	Applied <-chan struct{}
}

// watchHooks let tests observe the watcher's decisions instead of sleeping and hoping.
type watchHooks struct {
	checked func(changed bool) // after every content check
	stopped func()             // when the goroutine returns
}

func watchFile(ctx context.Context, path string, logger *slog.Logger, reload func(), inputs Inputs, hooks watchHooks) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("creating file watcher: %w", err)
	}
	w := &configWatch{path: abs, fsw: fw, dirs: map[string]bool{}, files: map[string]*watchedFile{}}
	// The baselines are taken before returning: taken inside the goroutine, they could already
	// hold a change the caller made right after WatchFile returned, and that change would never
	// reload.
	// Inputs carry the hashes their build saw; one that changed since is compared at once.
	added := w.setFiles(inputs.files())
	if err := w.follow(); err != nil {
		// Without the config file's own directory nothing would be seen; without a link's or an
		// input's, only a change there would be missed.
		if !w.dirs[filepath.Dir(w.target)] {
			_ = fw.Close()
			return err
		}
		logger.Warn("config watcher: some files are not watched; reload with SIGHUP after changing them", "error", err.Error())
	}
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
		// with a read of the config file; one that found it missing or empty stays open, so the
		// event that fills the file reads it at once if watchMaxDelay has passed: a writer that
		// rewrites the file periodically is otherwise read at the same point of its cycle, which
		// can be between its truncation and its write, every time.
		var first time.Time
		// schedule pushes the read back to watchDebounce from now, but not past watchMaxDelay
		// after the first event of the burst.
		schedule := func() {
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
		}
		if added {
			schedule()
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-inputs.Applied:
				added := w.setFiles(inputs.files())
				if err := w.follow(); err != nil {
					logger.Warn("config watcher", "error", err.Error())
				}
				if added {
					// A new input may have changed after the build read it and before it was
					// watched, and its event is lost: compare now.
					schedule()
				}
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
				schedule()
			case err, ok := <-fw.Errors:
				if !ok {
					return
				}
				logger.Warn("config watcher", "error", err.Error())
			case <-due:
				due = nil
				changed, state := w.check()
				switch state {
				case configEmpty:
					logger.Info("config file is empty; waiting for it to be written", "path", abs)
				case configRead:
					first = time.Time{}
				}
				if changed {
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

func (in Inputs) files() map[string]string {
	if in.Files == nil {
		return nil
	}
	return in.Files()
}

// configWatch is what the watcher knows of the files it watches: the symlinks on the way to each
// and the files they lead to, and the directories watched for them.
type configWatch struct {
	path   string // the config file, absolute, as given
	target string // the file path leads to, resolved
	files  map[string]*watchedFile
	fsw    *fsnotify.Watcher
	// names are the paths whose events count: the file each watched path resolves to and every
	// symlink on the way, each in its resolved directory (the form events are named in).
	names map[string]bool
	dirs  map[string]bool // watched
}

// watchedFile is the config file or one of its inputs, by its absolute path as named.
type watchedFile struct {
	path string
	last string // hash of the content the last reload read (or, for a new input, found)
}

// setFiles makes the watched files the config file and inputs, each input with the hash of the
// content the config in force was built from: a change made after the build but before the
// watcher got here is still a change. The config file keeps what the watcher last read. It
// reports whether an input is new to the watcher.
func (w *configWatch) setFiles(inputs map[string]string) (added bool) {
	keep := map[string]bool{w.path: true}
	if w.files[w.path] == nil {
		h, _ := readHash(w.path)
		w.files[w.path] = &watchedFile{path: w.path, last: h}
	}
	for p, h := range inputs {
		abs, err := filepath.Abs(p)
		if err != nil || abs == w.path {
			continue
		}
		keep[abs] = true
		if f := w.files[abs]; f != nil {
			f.last = h
		} else {
			w.files[abs] = &watchedFile{path: abs, last: h}
			added = true
		}
	}
	for p := range w.files {
		if !keep[p] {
			delete(w.files, p)
		}
	}
	return added
}

// hashFiles reads each file's hash (readHash), "" for one that cannot be read.
func hashFiles(paths []string) map[string]string {
	out := make(map[string]string, len(paths))
	for _, p := range paths {
		out[p], _ = readHash(p)
	}
	return out
}

// configState is what a check found of the config file itself.
type configState int

const (
	configMissing configState = iota // mid-replace: the event that ends it starts another check
	configEmpty                      // truncated by a writer that has not written yet
	configRead
)

// check reads every watched file and reports whether one changed since the last reload, when
// the config file can be read. Changes are remembered only when they are reported, so a change to
// an input seen while the config file was empty is reported once the config file is back.
func (w *configWatch) check() (changed bool, state configState) {
	type seen struct {
		f    *watchedFile
		hash string
	}
	var fresh []seen
	for _, f := range w.files {
		h, size := readHash(f.path)
		if f.path == w.path {
			switch {
			case h == "":
				state = configMissing
			case size == 0:
				state = configEmpty
			default:
				state = configRead
			}
		}
		// A missing input is mid-replace too (or gone, which the reload will report when the
		// config still names it). An empty one is content: an emptied keys_file revokes every
		// key, and a certificate caught half-written fails its reload, keeping the old one,
		// until the write that completes it.
		if h != "" && h != f.last && (size > 0 || f.path != w.path) {
			fresh = append(fresh, seen{f, h})
		}
	}
	if state != configRead || len(fresh) == 0 {
		return false, state
	}
	for _, s := range fresh {
		s.f.last = s.hash
	}
	return true, state
}

// follow resolves every watched path again and moves the watches to the directories of what they
// now go through. It keeps every watch it could add and reports the directories it could not
// watch.
func (w *configWatch) follow() error {
	names := map[string]bool{}
	dirs := map[string]bool{}
	for p := range w.files {
		target, links := resolveLinks(p)
		if p == w.path {
			w.target = target
		}
		names[target] = true
		dirs[filepath.Dir(target)] = true
		for _, l := range links {
			names[l] = true
			dirs[filepath.Dir(l)] = true
		}
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
	w.names, w.dirs = names, dirs
	if len(errs) > 0 {
		slices.Sort(errs)
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// relevant reports whether ev may have changed a watched file: an event on the file (write,
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
// cannot be read. Only regular files are read: a pipe (a config given as a shell's <(...)) would
// block the watcher, and a pipe cannot change the way a file does anyway.
func readHash(path string) (hash string, size int) {
	if st, err := os.Stat(path); err != nil || !st.Mode().IsRegular() {
		return "", 0
	}
	b, err := confval.ReadFile(path)
	if err != nil {
		return "", 0
	}
	sum := sha256.Sum256(b)
	return string(sum[:]), len(b)
}
