// Package load is Portico's closed-loop HTTP load generator for benchmarks: a fixed number of
// keep-alive connections, each sending its next request as soon as the previous answer has been
// read in full, as wrk does. It needs no external tool, so `make bench` runs anywhere Go does, and
// Compare measures two targets in alternating rounds so that a noisy machine does not favour one.
package load

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultTimeout bounds one request when Options.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Options describes one load run.
type Options struct {
	// Name labels the target in Compare's report ("direct", "portico"); optional.
	Name string
	// URL is the http or https URL every request goes to.
	URL string
	// Method defaults to GET.
	Method string
	// Body is sent with every request; nil for none.
	Body []byte
	// Header is sent with every request; a Host entry sets the Host header. Run only reads it.
	Header http.Header
	// Connections is the number of concurrent keep-alive connections, one worker each (≥ 1).
	Connections int
	// Duration bounds the measured part of the run; 0 means only MaxRequests bounds it. Requests
	// in flight when it ends are finished and counted.
	Duration time.Duration
	// MaxRequests caps the measured requests (answered or failed); 0 means no cap.
	MaxRequests int64
	// Warmup is sent before measuring starts and not counted, so connection set-up and cold
	// caches stay out of the figures.
	Warmup time.Duration
	// Timeout bounds one request, body included (default DefaultTimeout); a request over it is
	// abandoned and counts as an error.
	Timeout time.Duration
	// TLS configures https targets; nil uses the system roots.
	TLS *tls.Config
}

// Result is what a run measured. Latency percentiles are within 1% of the exact value (Max is
// exact) and cover answered requests only: a refused connection fails in microseconds and would
// flatter them.
type Result struct {
	// Requests counts answers read in full, whatever their status.
	Requests int64
	// Errors counts requests that got no complete answer (connect failure, reset, timeout).
	Errors int64
	// Non2xx counts answers with a status outside 200–299 (included in Requests).
	Non2xx int64
	// Elapsed is the measured wall time, from the end of warm-up to the last answer.
	Elapsed time.Duration
	// RPS is Requests per second of Elapsed.
	RPS float64
	// P50, P90, P99 and Max are latencies from sending the request to reading the last byte.
	P50, P90, P99, Max time.Duration
	// LoaderCPU is the CPU time (user and system) the load generator itself used over the
	// measured run, when it runs as a process of its own (Wrk); 0 when unknown (Run shares its
	// process with the caller).
	LoaderCPU time.Duration
}

// String formats the result on one line.
func (r Result) String() string {
	return fmt.Sprintf("%d requests in %s: %.0f req/s, p50 %s, p90 %s, p99 %s, max %s, %d errors, %d non-2xx",
		r.Requests, round(r.Elapsed), r.RPS, round(r.P50), round(r.P90), round(r.P99), round(r.Max), r.Errors, r.Non2xx)
}

// round keeps latencies readable: microseconds are the useful resolution for a loopback benchmark.
func round(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Microsecond)
}

func (o Options) validate() (Options, error) {
	var errs []error
	u, err := url.Parse(o.URL)
	switch {
	case o.URL == "":
		errs = append(errs, errors.New("url: required"))
	case err != nil:
		errs = append(errs, fmt.Errorf("url: %w", err))
	case u.Scheme != "http" && u.Scheme != "https":
		errs = append(errs, fmt.Errorf("url %q: scheme must be http or https", o.URL))
	case u.Host == "":
		errs = append(errs, fmt.Errorf("url %q: host required", o.URL))
	}
	if o.Method == "" {
		o.Method = http.MethodGet
	}
	if o.Connections < 1 {
		errs = append(errs, fmt.Errorf("connections %d: must be at least 1", o.Connections))
	}
	if o.Duration < 0 || o.Warmup < 0 || o.Timeout < 0 {
		errs = append(errs, errors.New("duration, warmup and timeout must not be negative"))
	}
	if o.MaxRequests < 0 {
		errs = append(errs, fmt.Errorf("max requests %d: must not be negative", o.MaxRequests))
	}
	if o.Duration == 0 && o.MaxRequests == 0 {
		errs = append(errs, errors.New("duration or max requests must be set, or the run never ends"))
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if len(errs) == 0 {
		// Checks the method token too, before any worker starts.
		if _, err := http.NewRequest(o.Method, o.URL, nil); err != nil {
			errs = append(errs, fmt.Errorf("request: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return o, fmt.Errorf("invalid load options: %w", err)
	}
	return o, nil
}

const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseDone
)

// run is the state the workers share; everything else is per worker.
type run struct {
	o      Options
	tr     *http.Transport
	phase  atomic.Int32
	issued atomic.Int64 // measured requests started, against MaxRequests
}

// worker owns its counters and histogram, so the hot loop touches no shared memory apart from the
// phase flag and (with MaxRequests) one atomic counter.
type worker struct {
	requests, errors, non2xx int64
	hist                     histogram
}

// Run sends load as o describes and reports what it measured. It returns early, with the figures
// so far and ctx's error, when ctx ends.
func Run(ctx context.Context, o Options) (Result, error) {
	o, err := o.validate()
	if err != nil {
		return Result{}, err
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     o.TLS,
		TLSHandshakeTimeout: 5 * time.Second,
		MaxIdleConns:        o.Connections,
		MaxIdleConnsPerHost: o.Connections,
		MaxConnsPerHost:     o.Connections,
		IdleConnTimeout:     90 * time.Second,
		// The point is to measure the target, not gzip on both ends.
		DisableCompression: true,
	}
	defer tr.CloseIdleConnections()
	// Workers call the transport directly: an http.Client would add a context, a timer and a
	// header copier per request (a third of the client's allocations), and would follow
	// redirects, which are answers to measure rather than further requests to make.
	r := &run{o: o, tr: tr}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	if o.Warmup == 0 {
		r.phase.Store(phaseMeasure) // before any worker starts, so none sends an unmeasured request
	}
	workers := make([]*worker, o.Connections)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{}
		workers[i] = w
		wg.Go(func() { w.loop(ctx, r) })
	}
	finished := make(chan struct{})
	go func() {
		wg.Wait()
		close(finished)
	}()

	if o.Warmup > 0 {
		sleep(ctx, finished, o.Warmup)
		start = time.Now()
		r.phase.CompareAndSwap(phaseWarmup, phaseMeasure)
	}
	if o.Duration > 0 {
		sleep(ctx, finished, o.Duration)
		r.phase.Store(phaseDone)
	}
	<-finished
	elapsed := time.Since(start)

	var res Result
	var h histogram
	for _, w := range workers {
		res.Requests += w.requests
		res.Errors += w.errors
		res.Non2xx += w.non2xx
		h.merge(&w.hist)
	}
	res.Elapsed = elapsed
	if elapsed > 0 {
		res.RPS = float64(res.Requests) / elapsed.Seconds()
	}
	res.P50, res.P90, res.P99, res.Max = h.quantile(0.50), h.quantile(0.90), h.quantile(0.99), time.Duration(h.max)
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("load run interrupted: %w", context.Cause(ctx))
	}
	return res, nil
}

// sleep waits d, or less when ctx ends or every worker has finished.
func sleep(ctx context.Context, finished <-chan struct{}, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-finished:
	}
}

func (w *worker) loop(ctx context.Context, r *run) {
	o := r.o
	wd := newWatchdog(ctx)
	defer wd.stop()
	// One request per worker, reused: net/http allows it once the previous response body is
	// closed, and it saves the allocations of building a request per iteration.
	req, err := http.NewRequestWithContext(wd.ctx, o.Method, o.URL, nil)
	if err != nil {
		return // validate built the same request, so this cannot happen
	}
	req.Header = o.Header
	if req.Header == nil {
		req.Header = make(http.Header)
	}
	if host := o.Header.Get("Host"); host != "" {
		req.Host = host
	}
	if o.Body != nil {
		// Lets the transport resend the body when a keep-alive connection turns out to be closed.
		req.GetBody = func() (io.ReadCloser, error) { return &bodyReader{b: o.Body}, nil }
	}
	for {
		phase := r.phase.Load()
		if phase == phaseDone || ctx.Err() != nil {
			return
		}
		measured := phase == phaseMeasure
		if measured && o.MaxRequests > 0 && r.issued.Add(1) > o.MaxRequests {
			return
		}
		if o.Body != nil {
			req.Body = &bodyReader{b: o.Body}
			req.ContentLength = int64(len(o.Body))
		}

		begin := time.Now()
		wd.arm(o.Timeout)
		resp, err := r.tr.RoundTrip(req)
		status := 0
		if err == nil {
			status = resp.StatusCode
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if !wd.disarm() {
			// The watchdog cancelled this request; later ones need a live context.
			req = req.WithContext(wd.ctx)
			if err == nil {
				err = context.DeadlineExceeded
			}
		}
		took := time.Since(begin)

		switch {
		case !measured:
		case err != nil:
			if ctx.Err() != nil {
				return // our own cancellation, not the target's failure
			}
			w.errors++
		default:
			w.requests++
			if status < 200 || status > 299 {
				w.non2xx++
			}
			w.hist.record(took)
		}
	}
}

// bodyReader replays the request body without copying it; a fresh one per request because the
// transport reads and closes it.
type bodyReader struct {
	b   []byte
	off int
}

func (br *bodyReader) Read(p []byte) (int, error) {
	if br.off >= len(br.b) {
		return 0, io.EOF
	}
	n := copy(p, br.b[br.off:])
	br.off += n
	return n, nil
}

func (br *bodyReader) Close() error { return nil }

// watchdog bounds each request with one reusable timer instead of a context and timer per
// request: when the timer fires it cancels the current request context, and only then is a new
// one made.
type watchdog struct {
	parent context.Context
	ctx    context.Context
	cancel context.CancelFunc
	timer  *time.Timer
}

func newWatchdog(parent context.Context) *watchdog {
	wd := &watchdog{parent: parent}
	wd.renew()
	return wd
}

// renew makes a fresh context and a stopped timer bound to its cancel function; each timer
// cancels only its own context, so a late firing cannot hit a newer request.
func (wd *watchdog) renew() {
	ctx, cancel := context.WithCancel(wd.parent)
	wd.ctx, wd.cancel = ctx, cancel
	wd.timer = time.AfterFunc(time.Hour, cancel)
	wd.timer.Stop()
}

func (wd *watchdog) arm(d time.Duration) { wd.timer.Reset(d) }

// disarm stops the timer and reports whether the request finished before it fired.
func (wd *watchdog) disarm() bool {
	if wd.timer.Stop() {
		return true
	}
	wd.renew()
	return false
}

func (wd *watchdog) stop() {
	wd.timer.Stop()
	wd.cancel()
}
