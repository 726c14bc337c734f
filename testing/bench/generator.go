package main

import (
	"context"
	"fmt"
	"io"
	"runtime"

	"github.com/portico-gw/portico/testing/load"
)

// Load generator choices for -loader.
const (
	loaderAuto = "auto" // wrk when it is installed and works, else the Go generator
	loaderWrk  = "wrk"  // wrk or fail
	loaderGo   = "go"   // the Go generator (testing/load), in the bench process
)

// generator runs load with wrk or with the Go generator. wrk is preferred because, on a machine
// of two cores shared by the load, the backends and Portico, the Go generator's own CPU is taken
// from Portico, and the queueing that causes is then measured as Portico's latency.
type generator struct {
	wrk *load.Wrk // nil: the Go generator
	// fallback: in auto mode, a failing wrk hands over to the Go generator for the rest of the run.
	fallback bool
	log      io.Writer
}

// newGenerator picks the generator for mode; lookup finds wrk (load.LookupWrk outside tests).
func newGenerator(mode string, lookup func() (load.Wrk, error), log io.Writer) (*generator, error) {
	g := &generator{log: log}
	switch mode {
	case loaderGo:
		return g, nil
	case loaderWrk, loaderAuto:
		w, err := lookup()
		if err != nil {
			if mode == loaderWrk {
				return nil, fmt.Errorf("-loader wrk: %w", err)
			}
			return g, nil
		}
		w.Threads = min(runtime.NumCPU(), 2)
		g.wrk, g.fallback = &w, mode == loaderAuto
		return g, nil
	default:
		return nil, fmt.Errorf("-loader %q: want %s, %s or %s", mode, loaderAuto, loaderWrk, loaderGo)
	}
}

// usesWrk reports whether the next run goes through wrk.
func (g *generator) usesWrk() bool { return g.wrk != nil }

// String describes the generator for the report.
func (g *generator) String() string {
	if g.wrk != nil {
		return fmt.Sprintf("%s, %d threads, a process of its own", g.wrk, g.wrk.Threads)
	}
	return "Go (testing/load), inside the bench process"
}

// run measures o. In auto mode a wrk failure (other than ctx ending) is reported once and the
// run is repeated with the Go generator, which every later run uses too.
func (g *generator) run(ctx context.Context, o load.Options) (load.Result, error) {
	if g.wrk != nil {
		res, err := g.wrk.Run(ctx, o)
		if err == nil || !g.fallback || ctx.Err() != nil {
			return res, err
		}
		fmt.Fprintf(g.log, "load generator: wrk failed (%v); falling back to %s\n", err, "the Go generator (testing/load)")
		g.wrk = nil
	}
	return load.Run(ctx, o)
}
