package confval

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Files the operator names are read whole: a device would never end (/dev/zero filled memory
// until the loader died) and a huge file is a mistake; both are refused before reading.
func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(regular, []byte("pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	huge := filepath.Join(dir, "huge.keys")
	f, err := os.Create(huge)
	if err != nil {
		t.Fatal(err)
	}
	// Sparse: no disk used, but Stat reports the size.
	if err := f.Truncate(MaxFileBytes + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	sock := filepath.Join(dir, "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	tests := []struct {
		file, wantErr string
	}{
		{regular, ""},
		{dir, "is a directory"},
		{"/dev/zero", "is a device or a socket"},
		{sock, "is a device or a socket"},
		{huge, "larger than 64 MiB"},
		{filepath.Join(dir, "missing"), "no such file"},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.file), func(t *testing.T) {
			data, err := ReadFile(tt.file)
			if tt.wantErr == "" {
				if err != nil || string(data) != "pem" {
					t.Fatalf("ReadFile = %q, %v", data, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ReadFile err = %v, want %q", err, tt.wantErr)
			}
			var p Problems
			if p.RequireFile("x.file", tt.file) || len(p) != 1 {
				t.Fatalf("RequireFile accepted %s (problems %v)", tt.file, p)
			}
		})
	}
}

// A pipe (a shell's <(...) given as the config) is read to its end.
func TestReadFileReadsAPipe(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "config.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	go func() {
		w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		_, _ = w.WriteString("listen: :8080\n")
		w.Close()
	}()
	done := make(chan struct{})
	var data []byte
	var err error
	go func() { data, err = ReadFile(fifo); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("ReadFile of a pipe with a writer did not return")
	}
	if err != nil || string(data) != "listen: :8080\n" {
		t.Fatalf("ReadFile = %q, %v", data, err)
	}
}
