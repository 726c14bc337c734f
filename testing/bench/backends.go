package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/portico-gw/portico/testing/demo"
)

// The demo backends run in a child process (this same binary with -serve-backends), so that
// their CPU is neither mixed with the load generator's nor hidden: the report shows each
// process's share. The child speaks a line protocol on stdin/stdout: it first prints one JSON
// line of URLs (backendURLs), then answers each "latency <duration>" line, which sets the latency
// of every demo service, with "ok" or "error: …". It exits when stdin closes.

// backendURLs is the child's first line.
type backendURLs struct {
	// Bench is the pass-through benchmark backend (demo.NewBench).
	Bench string `json:"bench"`
	// Services are the demo services by name (demo.Names).
	Services map[string]string `json:"services"`
}

// serveBackendsProfiled is the child's main: serveBackends, with a CPU profile in profileDir
// when the parent asked for profiles.
func serveBackendsProfiled(in io.Reader, out io.Writer) error {
	if profileDir != "" {
		f, err := os.Create(filepath.Join(profileDir, "backends.prof"))
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	return serveBackends(context.Background(), in, out)
}

// serveBackends serves the demo backends until in reaches EOF.
func serveBackends(ctx context.Context, in io.Reader, out io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bench := demo.NewBench()
	_, benchURL, err := demo.Start(ctx, "127.0.0.1:0", bench)
	if err != nil {
		return err
	}
	defer bench.Close()
	cluster, err := demo.StartAll(ctx, "127.0.0.1", 0)
	if err != nil {
		return err
	}
	defer cluster.Close()
	line, err := json.Marshal(backendURLs{Bench: benchURL, Services: cluster.URLs()})
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(out, "%s\n", line); err != nil {
		return err
	}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		reply := "ok"
		if err := backendCommand(cluster, sc.Text()); err != nil {
			reply = "error: " + err.Error()
		}
		if _, err := fmt.Fprintln(out, reply); err != nil {
			return err
		}
	}
	return sc.Err()
}

func backendCommand(cluster *demo.Cluster, line string) error {
	verb, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
	if verb != "latency" {
		return fmt.Errorf("unknown command %q", verb)
	}
	d, err := time.ParseDuration(arg)
	if err != nil {
		return err
	}
	for _, name := range demo.Names {
		if err := cluster.Service(name).Behavior.SetLatency(d); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// backendProcess is the parent's handle on the child.
type backendProcess struct {
	backendURLs
	*child
}

// startBackends starts the child and reads its URLs.
func startBackends() (*backendProcess, error) {
	args := []string{"-serve-backends"}
	if profileDir != "" {
		args = append(args, "-profile", profileDir)
	}
	b := &backendProcess{}
	c, err := startChild("backends", args, nil, &b.backendURLs)
	if err != nil {
		return nil, err
	}
	b.child = c
	return b, nil
}

// SetLatency sets the latency of every demo service.
func (b *backendProcess) SetLatency(d time.Duration) error {
	if _, err := fmt.Fprintf(b.stdin, "latency %s\n", d); err != nil {
		return err
	}
	if !b.out.Scan() {
		return errors.New("the backends process did not answer")
	}
	if reply := b.out.Text(); reply != "ok" {
		return fmt.Errorf("backends process: %s", reply)
	}
	return nil
}
