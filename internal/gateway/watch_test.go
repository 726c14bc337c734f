package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// watched is one running watcher with a counting reload callback and channels that report each
// reload and each content check, so tests wait for events instead of sleeping.
type watched struct {
	path    string
	reloads atomic.Int32
	reload  chan string // content seen by each reload
	checked chan bool   // outcome of each content check
	stopped chan struct{}
	cancel  context.CancelFunc
}

func startWatch(t *testing.T, path string) *watched {
	t.Helper()
	return startWatchInputs(t, path, Inputs{})
}

func startWatchInputs(t *testing.T, path string, inputs Inputs) *watched {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &watched{
		path:    path,
		reload:  make(chan string, 100),
		checked: make(chan bool, 100),
		stopped: make(chan struct{}),
		cancel:  cancel,
	}
	hooks := watchHooks{
		checked: func(changed bool) { w.checked <- changed },
		stopped: func() { close(w.stopped) },
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	err := watchFile(ctx, path, logger, func() {
		w.reloads.Add(1)
		b, _ := os.ReadFile(path)
		w.reload <- string(b)
	}, inputs, hooks)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-w.stopped:
		case <-time.After(3 * time.Second):
			t.Error("watcher goroutine still running 3s after cancel")
		}
	})
	return w
}

// waitReload fails the test unless a reload that saw want happens within 3s.
func (w *watched) waitReload(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-w.reload:
		if got != want {
			t.Fatalf("reload saw %q, want %q", got, want)
		}
	case <-time.After(3 * time.Second):
		t.Fatalf("no reload within 3s (want content %q)", want)
	}
}

// expectQuiet fails the test if another reload happens within a few debounce periods. It can only
// miss a late reload on a very slow machine, never report a false one.
func (w *watched) expectQuiet(t *testing.T) {
	t.Helper()
	select {
	case got := <-w.reload:
		t.Fatalf("unexpected extra reload (content %q); %d reloads in all", got, w.reloads.Load())
	case <-time.After(3 * watchDebounce):
	}
}

// expectReloads waits out any late reload, then checks there were want in all.
func (w *watched) expectReloads(t *testing.T, want int32) {
	t.Helper()
	w.expectQuiet(t)
	if n := w.reloads.Load(); n != want {
		t.Fatalf("reloads = %d, want %d", n, want)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestWatchFileReloadsOnceOnChange(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, path string)
	}{
		{"write in place", func(t *testing.T, path string) { writeFile(t, path, "v2") }},
		{"rename over", func(t *testing.T, path string) {
			// Editors and config management write a temporary file and rename it over the original.
			tmp := path + ".tmp"
			writeFile(t, tmp, "v2")
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "portico.yaml")
			writeFile(t, path, "v1")
			w := startWatch(t, path)
			tt.change(t, path)
			w.waitReload(t, "v2")
			w.expectReloads(t, 1)
		})
	}
}

func TestWatchFileSameContentNoReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, path, "v1")
	w := startWatch(t, path)
	writeFile(t, path, "v1")
	select {
	case changed := <-w.checked:
		if changed {
			t.Fatal("rewriting the same content was taken for a change")
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the write was not noticed within 3s")
	}
	if n := w.reloads.Load(); n != 0 {
		t.Fatalf("reloads = %d, want 0", n)
	}
}

// A busy file beside the config (an access log) must neither postpone nor prevent a reload, nor
// cause reads of the config. The log is written until the reload arrives, so a watcher that
// restarts its timer on every event in the directory never reloads and the test fails.
func TestWatchFileIgnoresBusyNeighbour(t *testing.T) {
	dir, path := newConfigFile(t)
	w := startWatch(t, path)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		log, err := os.Create(filepath.Join(dir, "access.log"))
		if err != nil {
			t.Error(err)
			return
		}
		defer log.Close()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		deadline := time.After(5 * time.Second) // bounds the writes if the test has already failed
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-deadline:
				return
			case <-tick.C:
				fmt.Fprintf(log, "line %d\n", i)
			}
		}
	}()
	defer func() { close(stop); <-done }()
	// Log traffic alone is not even a reason to read the config.
	time.Sleep(3 * watchDebounce)
	if n := len(w.checked); n != 0 {
		t.Fatalf("%d config checks caused by writes to another file, want 0", n)
	}
	writeFile(t, path, "v2")
	w.waitReload(t, "v2")
}

// A config file rewritten without pause is still reloaded: relevant events do not push the check
// back either.
func TestWatchFileContinuousWritesStillReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, path, "v0")
	w := startWatch(t, path)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		deadline := time.After(5 * time.Second)
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			case <-deadline:
				return
			case <-tick.C:
				if err := os.WriteFile(path, []byte(fmt.Sprintf("v%d", i)), 0o644); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	defer func() { close(stop); <-done }()
	select {
	case <-w.reload:
	case <-time.After(3 * time.Second):
		t.Fatal("no reload within 3s while the config was being rewritten")
	}
}

// kubeVolume is a directory as Kubernetes mounts a ConfigMap or a Secret: dir/name links to
// ..data/name, and ..data to a directory of the current version. An update writes a new version
// directory and renames a new ..data link over the old one, so the file itself sees no event.
type kubeVolume struct {
	t       *testing.T
	dir     string
	name    string
	version int
}

// newKubeVolume mounts a volume holding one file, name, with content; it returns the path.
func newKubeVolume(t *testing.T, name, content string) (*kubeVolume, string) {
	t.Helper()
	v := &kubeVolume{t: t, dir: t.TempDir(), name: name}
	v.writeVersion(content)
	if err := os.Symlink(v.versionDir(), filepath.Join(v.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(v.dir, name)
	if err := os.Symlink(filepath.Join("..data", name), path); err != nil {
		t.Fatal(err)
	}
	return v, path
}

func (v *kubeVolume) versionDir() string {
	return fmt.Sprintf("..2026_11_26_10_%02d_00.%09d", v.version, v.version)
}

func (v *kubeVolume) writeVersion(content string) {
	v.t.Helper()
	v.version++
	if err := os.Mkdir(filepath.Join(v.dir, v.versionDir()), 0o755); err != nil {
		v.t.Fatal(err)
	}
	writeFile(v.t, filepath.Join(v.dir, v.versionDir(), v.name), content)
}

// update publishes content as the kubelet does, and removes the old version.
func (v *kubeVolume) update(content string) {
	v.t.Helper()
	old := v.versionDir()
	v.writeVersion(content)
	if err := os.Symlink(v.versionDir(), filepath.Join(v.dir, "..data_tmp")); err != nil {
		v.t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(v.dir, "..data_tmp"), filepath.Join(v.dir, "..data")); err != nil {
		v.t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(v.dir, old)); err != nil {
		v.t.Fatal(err)
	}
}

func TestWatchFileKubernetesConfigMapSwap(t *testing.T) {
	vol, path := newKubeVolume(t, "portico.yaml", "v1")
	w := startWatch(t, path)
	vol.update("v2")
	w.waitReload(t, "v2")
	w.expectReloads(t, 1)
}

func TestWatchFileStopsOnCancel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, path, "v1")
	w := startWatch(t, path)
	w.cancel()
	select {
	case <-w.stopped:
	case <-time.After(3 * time.Second):
		t.Fatal("watcher goroutine still running 3s after cancel")
	}
	writeFile(t, path, "v2")
	w.expectQuiet(t)
	if n := w.reloads.Load(); n != 0 {
		t.Fatalf("reloads after cancel = %d, want 0", n)
	}
}

// The config given to `portico run -config` is often a symlink into another directory (a deploy
// tree, a shared config repo, a stow-managed file). An edit of the file it points to is a change
// of the config file and must reload; only the link's own directory was watched.
func TestWatchFileFollowsSymlinkedConfig(t *testing.T) {
	real := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, real, "v1\n")
	link := filepath.Join(t.TempDir(), "portico.yaml")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	w := startWatch(t, link)
	writeFile(t, real, "v2\n")
	w.waitReload(t, "v2\n")
}

// A deploy tree links "current" to the latest release and keeps the old ones: moving the link is
// the only event an update makes, in a directory that is neither the config's nor its target's.
func TestWatchFileFollowsAMovedDirectoryLink(t *testing.T) {
	root := t.TempDir()
	for _, rel := range []string{"r1", "r2", "r3"} {
		if err := os.Mkdir(filepath.Join(root, rel), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(root, rel, "portico.yaml"), rel)
	}
	current := filepath.Join(root, "current")
	point := func(rel string) {
		t.Helper()
		if err := os.Symlink(rel, current+".tmp"); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(current+".tmp", current); err != nil {
			t.Fatal(err)
		}
	}
	point("r1")
	w := startWatch(t, filepath.Join(current, "portico.yaml"))
	point("r2")
	w.waitReload(t, "r2")
	// The watch moved with the link: an edit in the new release is seen.
	writeFile(t, filepath.Join(root, "r2", "portico.yaml"), "r2, edited")
	w.waitReload(t, "r2, edited")
	point("r3")
	w.waitReload(t, "r3")
}

// A ConfigMap volume whose item has a nested path (items: [{key: portico.yaml, path:
// conf/portico.yaml}]) makes "conf" a symlink to "..data/conf". kubelet's update swaps ..data in
// the volume root, which was not watched: the removal of the old version reloaded once, and the
// watch went with it.
func TestWatchFileKubernetesNestedItemPath(t *testing.T) {
	root := t.TempDir()
	mkData := func(ts, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(root, ts, "conf"), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(root, ts, "conf", "portico.yaml"), content)
	}
	swap := func(ts, old string) {
		t.Helper()
		if err := os.Symlink(ts, filepath.Join(root, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(root, "..data_tmp"), filepath.Join(root, "..data")); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(filepath.Join(root, old)); err != nil {
			t.Fatal(err)
		}
	}
	mkData("..2026_11_26_10_00_00.000000001", "v1")
	if err := os.Symlink("..2026_11_26_10_00_00.000000001", filepath.Join(root, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..data", "conf"), filepath.Join(root, "conf")); err != nil {
		t.Fatal(err)
	}
	w := startWatch(t, filepath.Join(root, "conf", "portico.yaml"))

	mkData("..2026_11_26_10_05_00.000000002", "v2")
	swap("..2026_11_26_10_05_00.000000002", "..2026_11_26_10_00_00.000000001")
	w.waitReload(t, "v2")

	// The next ConfigMap update, a few minutes later.
	mkData("..2026_11_26_10_10_00.000000003", "v3")
	swap("..2026_11_26_10_10_00.000000003", "..2026_11_26_10_05_00.000000002")
	w.waitReload(t, "v3")
	w.expectReloads(t, 2)
}

// A file truncated by a writer that pauses before writing (shell redirection of a slow
// generator, curl -o) must not be handed to reload empty; the write that fills it reloads.
func TestWatchFileDoesNotReloadTruncatedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, path, "v1")
	w := startWatch(t, path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0o644) // `gen > portico.yaml`
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	time.Sleep(3 * watchDebounce) // the generator is still working
	if _, err := f.WriteString("v2"); err != nil {
		t.Fatal(err)
	}
	w.waitReload(t, "v2")
	w.expectQuiet(t)
}

// A writer that writes the file in pieces, each soon after the last, is read once it is done:
// the read waits for the file to be quiet, not a fixed time after the first event, which read
// the file half-written (a valid YAML prefix is a config with fewer routes).
func TestWatchFileWaitsForAWriterToFinish(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, path, "v1")
	w := startWatch(t, path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Together the pieces take longer than watchDebounce; the gaps are much shorter.
	const pieces = "abcdefghijklmnop"
	for _, piece := range pieces {
		if _, err := f.WriteString(string(piece)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(watchDebounce / 10)
	}
	w.waitReload(t, pieces)
}

// resolveLinks reports every link on the way, including those a link's target goes through, and
// ends on a loop.
func TestResolveLinks(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"v1/conf", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	link := func(dest, name string) {
		t.Helper()
		if err := os.Symlink(dest, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	link("v1", "..data")
	link("..data/conf", "conf")
	link(filepath.Join(root, "conf", "portico.yaml"), "etc/portico.yaml") // absolute
	link("../etc/portico.yaml", "v1/up.yaml")                             // through ".."
	link("loop-b", "loop-a")
	link("loop-a", "loop-b")
	tests := []struct {
		path, target string
		links        []string
	}{
		{path: "conf/portico.yaml", target: "v1/conf/portico.yaml", links: []string{"conf", "..data"}},
		{path: "etc/portico.yaml", target: "v1/conf/portico.yaml", links: []string{"etc/portico.yaml", "conf", "..data"}},
		{path: "v1/up.yaml", target: "v1/conf/portico.yaml", links: []string{"v1/up.yaml", "etc/portico.yaml", "conf", "..data"}},
		{path: "v1/missing.yaml", target: "v1/missing.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			target, links := resolveLinks(filepath.Join(root, tt.path))
			var want []string
			for _, l := range tt.links {
				want = append(want, filepath.Join(root, l))
			}
			if target != filepath.Join(root, tt.target) || fmt.Sprint(links) != fmt.Sprint(want) {
				t.Fatalf("resolveLinks = %s, %v; want %s, %v", target, links, filepath.Join(root, tt.target), want)
			}
		})
	}
	if _, links := resolveLinks(filepath.Join(root, "loop-a")); len(links) != maxLinks {
		t.Fatalf("a symlink loop followed %d links, want it cut at %d", len(links), maxLinks)
	}
}

// A certificate renewed on disk (cert-manager, certbot) is served without a SIGHUP: the files the
// config reads are watched like the config file, and a change to any of them reloads.
func TestWatchFileReloadsWhenAnInputChanges(t *testing.T) {
	_, path := newConfigFile(t)
	certs := filepath.Join(t.TempDir(), "certs") // elsewhere: its directory must be watched too
	if err := os.Mkdir(certs, 0o755); err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(certs, "tls.crt"), filepath.Join(certs, "tls.key")
	writeFile(t, cert, "cert1")
	writeFile(t, key, "key1")
	w := startWatchInputs(t, path, Inputs{Files: hashesOf(cert, key)})

	// A renewal writes both files; they are read together once quiet, so one reload.
	writeFile(t, cert, "cert2")
	writeFile(t, key, "key2")
	w.waitReload(t, "v1")
	w.expectReloads(t, 1)

	// The same content written again is no change.
	writeFile(t, cert, "cert2")
	w.expectReloads(t, 1)

	// A file beside the inputs that the config does not read is not one.
	writeFile(t, filepath.Join(certs, "ca.crt"), "other")
	w.expectReloads(t, 1)
}

// A Kubernetes Secret volume updates its files by swapping the ..data link, as a ConfigMap does.
func TestWatchFileInputInSecretVolume(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, path, "v1")
	vol, cert := newKubeVolume(t, "tls.crt", "cert1")
	w := startWatchInputs(t, path, Inputs{Files: hashesOf(cert)})
	vol.update("cert2")
	w.waitReload(t, "v1")
	w.expectReloads(t, 1)
}

// After a config is applied (by the watcher or by SIGHUP) the watches follow the files it names:
// a certificate it no longer reads is no reason to reload, the one it reads now is.
func TestWatchFileFollowsTheInputsOfTheAppliedConfig(t *testing.T) {
	dir, path := newConfigFile(t)
	oldCert, newCert := filepath.Join(dir, "old.pem"), filepath.Join(t.TempDir(), "new.pem")
	writeFile(t, oldCert, "old1")
	writeFile(t, newCert, "new1")
	var current atomic.Pointer[string]
	current.Store(&oldCert)
	applied := make(chan struct{}, 1)
	w := startWatchInputs(t, path, Inputs{Files: func() map[string]string { return hashFiles([]string{*current.Load()}) }, Applied: applied})

	current.Store(&newCert)
	applied <- struct{}{}
	// The watcher takes the signal before the next event it reads; wait until it has.
	for deadline := time.Now().Add(3 * time.Second); len(applied) > 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the watcher did not take the applied signal")
		}
	}
	writeFile(t, oldCert, "old2")
	w.expectReloads(t, 0)
	writeFile(t, newCert, "new2")
	w.waitReload(t, "v1")
	w.expectReloads(t, 1)
}

// An input that is missing (a file the config names but an operator deleted) does not stop a
// change to the config file from reloading: the new config may no longer name it.
func TestWatchFileMissingInputDoesNotBlockReload(t *testing.T) {
	dir, path := newConfigFile(t)
	gone := filepath.Join(dir, "gone.pem")
	w := startWatchInputs(t, path, Inputs{Files: hashesOf(gone)})
	writeFile(t, path, "v2")
	w.waitReload(t, "v2")
	w.expectReloads(t, 1)
}

// A certificate renewed while the config file is truncated (its writer not done) is not lost:
// the reload waits for the config, and happens even if the config comes back unchanged.
func TestWatchFileKeepsAnInputChangeWhileConfigIsEmpty(t *testing.T) {
	dir, path := newConfigFile(t)
	cert := filepath.Join(dir, "tls.crt")
	writeFile(t, cert, "cert1")
	w := startWatchInputs(t, path, Inputs{Files: hashesOf(cert)})
	writeFile(t, path, "")
	writeFile(t, cert, "cert2")
	w.expectReloads(t, 0)
	writeFile(t, path, "v1")
	w.waitReload(t, "v1")
	w.expectReloads(t, 1)
}

// hashesOf is Inputs.Files for a config that reads paths, built from what they hold when asked.
func hashesOf(paths ...string) func() map[string]string {
	return func() map[string]string { return hashFiles(paths) }
}

// An emptied input is a change: "truncate keys.txt" revokes every key, and it never reloaded
// (only the config file waits for content).
func TestWatchFileEmptiedInputReloads(t *testing.T) {
	dir, path := newConfigFile(t)
	keys := filepath.Join(dir, "keys.txt")
	writeFile(t, keys, "k-123\n")
	w := startWatchInputs(t, path, Inputs{Files: hashesOf(keys)})
	writeFile(t, keys, "")
	w.waitReload(t, "v1")
	w.expectReloads(t, 1)
}

// The hashes an applied config hands over are those its build read: an input that changed after
// the build and before the watcher took the signal (its event lost, the file not yet watched)
// is compared at once and reloads.
func TestWatchFileInputChangedBeforeItWasWatched(t *testing.T) {
	_, path := newConfigFile(t)
	cert := filepath.Join(t.TempDir(), "tls.crt")
	writeFile(t, cert, "cert1")
	built := hashFiles([]string{cert}) // what the build read
	writeFile(t, cert, "cert2")        // before the watcher watches it
	applied := make(chan struct{}, 1)
	var files atomic.Pointer[map[string]string]
	none := map[string]string{}
	files.Store(&none)
	w := startWatchInputs(t, path, Inputs{Files: func() map[string]string { return *files.Load() }, Applied: applied})
	files.Store(&built)
	applied <- struct{}{}
	w.waitReload(t, "v1")
	w.expectReloads(t, 1)
}

// newConfigFile writes "v1" to portico.yaml in a new directory.
func newConfigFile(t *testing.T) (dir, path string) {
	t.Helper()
	dir = t.TempDir()
	path = filepath.Join(dir, "portico.yaml")
	writeFile(t, path, "v1")
	return dir, path
}
