// Command portico is the Portico gateway: one binary, one YAML file.
//
//	portico run -config portico.yaml    serve, reloading on SIGHUP and on file change
//	portico validate -config FILE       check a config and print every problem with its line
//	portico demo                        built-in demo backends + gateway, for a first look
//	portico version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/gateway"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(rest, stdout, stderr)
	case "validate":
		return cmdValidate(rest, stdout, stderr)
	case "demo":
		return cmdDemo(rest, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "portico", version)
		return 0
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "portico: unknown command %q\n", cmd)
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  portico run -config portico.yaml    serve; SIGHUP or a file change reloads, SIGTERM drains
  portico validate -config FILE       print every problem in FILE with its line; exit 1 if any
  portico demo [-listen :8080]        demo backends + gateway with the embedded demo config
  portico version
`)
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "portico.yaml", "config file to check")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	f, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	// What run builds from a loaded file can still refuse it (two consumers sharing an API key,
	// a PEM key that does not parse, an unknown BFF operation): build it the same way, without
	// listening, connecting or fetching anything, and throw it away.
	quiet := slog.New(slog.DiscardHandler)
	if err := gateway.Check(f, gateway.Options{Logger: quiet, Stdout: io.Discard}); err != nil {
		for _, e := range leafErrors(err) {
			fmt.Fprintf(stderr, "%s: %v\n", *path, e)
		}
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", *path)
	return 0
}

// leafErrors lists the errors joined in err (errors.Join, possibly nested), one problem each.
func leafErrors(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, leafErrors(e)...)
	}
	return out
}

func cmdRun(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "portico.yaml", "config file")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file (for performance work)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	logger, err := newLogger(stderr, *logLevel)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if *cpuProfile != "" {
		out, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		if err := pprof.StartCPUProfile(out); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		defer func() { pprof.StopCPUProfile(); _ = out.Close() }()
	}
	f, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	tuneGC(os.Getenv, readCgroupLimit)
	return serve(f, *path, logger, stdout, nil)
}

// serve runs the gateway until SIGINT/SIGTERM, reloading path on SIGHUP and on file changes
// (path "" disables reload, as for the embedded demo config).
func serve(f *config.File, path string, logger *slog.Logger, stdout io.Writer, bound gateway.Bound) int {
	slog.SetDefault(logger)
	// Signals are caught before the (possibly slow) first build, so a SIGHUP during start-up
	// does not kill the process and a SIGTERM stops it cleanly.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal, a second one is the operator insisting: default handling
		// ends the process even in the middle of a long drain.
		<-ctx.Done()
		stop()
	}()
	hup := make(chan os.Signal, 1)
	if path != "" {
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
	}
	g, err := gateway.New(f, gateway.Options{Logger: logger, Stdout: stdout})
	if err != nil {
		logger.Error("starting gateway", "error", err.Error())
		return 1
	}
	if path != "" {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-hup:
					_ = g.Reload(path)
				}
			}
		}()
		inputs := gateway.Inputs{Files: g.InputFiles, Applied: g.Applied()}
		if err := gateway.WatchFile(ctx, path, logger, func() { _ = g.Reload(path) }, inputs); err != nil {
			logger.Warn("watching config file; reload with SIGHUP instead", "error", err.Error())
		}
	}
	if bound == nil {
		bound = func(name, addr string) { logger.Info("listening", "listener", name, "addr", addr) }
	}
	if err := g.Serve(ctx, bound); err != nil && !errors.Is(err, context.Canceled) {
		logger.Error("serving", "error", err.Error())
		return 1
	}
	logger.Info("stopped")
	return 0
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level: %w", err)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// gcPercent is the GC target when GOGC is not set. A gateway's live heap is small (config,
// pools, in-flight requests) while it allocates per request; at the default 100 it collected
// several times a second under load. 400 trades a few MiB of heap for fewer collections.
const gcPercent = 400

// tuneGC applies gcPercent unless GOGC is set, and, unless GOMEMLIMIT is set, a soft memory limit
// of 90% of the container's memory limit when there is one, so that the larger GC target never
// pushes the process into the OOM killer: near the limit the runtime collects as often as needed.
// It returns what it applied, for the test.
func tuneGC(getenv func(string) string, cgroupLimit func() int64) (percent int, limit int64) {
	percent, limit = -1, -1
	if getenv("GOGC") == "" {
		percent = gcPercent
		debug.SetGCPercent(percent)
	}
	if getenv("GOMEMLIMIT") == "" {
		if l := cgroupLimit(); l > 0 {
			limit = l / 10 * 9
			debug.SetMemoryLimit(limit)
		}
	}
	return percent, limit
}

// readCgroupLimit returns the cgroup v2 memory limit, or 0 when there is none or it is unreadable.
func readCgroupLimit() int64 {
	b, err := os.ReadFile("/sys/fs/cgroup/memory.max")
	if err != nil {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil { // "max": no limit
		return 0
	}
	return n
}
