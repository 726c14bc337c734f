package gateway

import (
	"os"
	"runtime"
)

// applyProcs makes server.procs the number of threads running Go code (GOMAXPROCS), at start
// and on every reload. 0 hands the choice back to Go (the CPUs the container may use, followed as
// that limit changes). A GOMAXPROCS environment variable wins, as it does for any Go program.
//
// Why a gateway wants this: on a host it shares with busy processes (its backends, a sidecar, a
// load generator), every extra P is a thread the scheduler wakes to look for work and the kernel
// must find a CPU for; with fewer Ps than CPUs the same work finishes with shorter tails.
func (g *Gateway) applyProcs(n int) {
	if env := os.Getenv("GOMAXPROCS"); env != "" {
		if n > 0 {
			g.logger.Warn("server.procs ignored: the GOMAXPROCS environment variable is set", "GOMAXPROCS", env, "procs", n)
		}
		return
	}
	if n == 0 {
		if g.procsSet {
			runtime.SetDefaultGOMAXPROCS()
			g.procsSet = false
			g.logger.Info("procs back to Go's default", "procs", runtime.GOMAXPROCS(0))
		}
		return
	}
	if prev := runtime.GOMAXPROCS(n); prev != n {
		g.logger.Info("procs set", "procs", n, "was", prev)
	}
	g.procsSet = true
}
