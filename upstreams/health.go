package upstreams

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"time"
)

// healthUserAgent identifies probes in backend access logs.
const healthUserAgent = "portico-health-check"

// probeLoop checks t every interval until ctx is done. Consecutive results flip the target's
// health at the configured thresholds; each probe refreshes the gauge, so a gauge briefly
// overwritten during a reload corrects itself within one interval.
func (u *Upstream) probeLoop(ctx context.Context, t *target) {
	defer func() {
		if p := recover(); p != nil {
			u.log.Error("upstream health check panicked; checks for this target stopped",
				"upstream", u.name, "target", t.url, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
	}()
	a := u.active
	ticker := time.NewTicker(a.interval)
	defer ticker.Stop()
	successes, failures := 0, 0
	for {
		err := u.probe(ctx, t)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			successes, failures = successes+1, 0
			if !t.healthy.Load() && successes >= a.healthy {
				t.healthy.Store(true)
				u.log.Info("upstream target healthy", "upstream", u.name, "target", t.url)
				u.rebuild()
			}
		} else {
			successes, failures = 0, failures+1
			if t.healthy.Load() && failures >= a.unhealthy {
				t.healthy.Store(false)
				u.log.Warn("upstream target unhealthy", "upstream", u.name, "target", t.url, "error", err)
				u.rebuild()
			}
		}
		u.setHealthyGauge(t, t.healthy.Load() && t.ejectedUntil.Load() <= monoAt(time.Now()))
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// probe sends one GET to the health path; a 2xx or 3xx answer within the timeout is healthy.
func (u *Upstream) probe(ctx context.Context, t *target) error {
	ctx, cancel := context.WithTimeout(ctx, u.active.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url+u.active.path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", healthUserAgent)
	resp, err := u.probes.RoundTrip(req)
	if err != nil {
		return err
	}
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("health check answered %d", resp.StatusCode)
	}
	return nil
}
