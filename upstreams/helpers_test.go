package upstreams

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portico-gw/portico/internal/confval"
)

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

func intp(i int) *int { return &i }

func boolp(b bool) *bool { return &b }

func dur(d time.Duration) confval.Duration { return confval.Duration(d) }

// newTestRegistry builds a registry of one upstream named "svc" and closes it with the test.
func newTestRegistry(t testing.TB, cfg Config, opts ...Options) (*Registry, *Upstream) {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Logger == nil {
		o.Logger = quietLogger
	}
	reg, err := NewRegistry(map[string]Config{"svc": cfg}, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	u, ok := reg.Get("svc")
	if !ok {
		t.Fatal("upstream svc missing")
	}
	return reg, u
}

func targetsOf(urls ...string) []TargetConfig {
	out := make([]TargetConfig, len(urls))
	for i, u := range urls {
		out[i] = TargetConfig{URL: u}
	}
	return out
}

// closedPort returns the URL of a local port nothing listens on, so connecting is refused.
// Port 1 (tcpmux, privileged), not a port freed by closing a listener: another test process
// running in parallel could bind that one before the test connects (seen under load:
// "err = <nil>, want bad gateway").
func closedPort(t testing.TB) string {
	t.Helper()
	return "http://127.0.0.1:1"
}

// hitLog records which backend served which request, in order.
type hitLog struct {
	mu   sync.Mutex
	hits []hit
}

type hit struct {
	backend, id, method, body string
}

func (l *hitLog) add(h hit) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.hits = append(l.hits, h)
}

func (l *hitLog) all() []hit {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]hit(nil), l.hits...)
}

// count is how many requests backend received.
func (l *hitLog) count(backend string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, h := range l.hits {
		if h.backend == backend {
			n++
		}
	}
	return n
}

// recordingBackend answers status to every request and logs it under name.
func recordingBackend(t testing.TB, name string, log *hitLog, status func() int) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		log.add(hit{backend: name, id: r.Header.Get("X-Test-ID"), method: r.Method, body: string(b)})
		w.WriteHeader(status())
		_, _ = io.WriteString(w, name)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func fixed(code int) func() int { return func() int { return code } }

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func get(t testing.TB, u *Upstream, id string) (*http.Response, error) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "http://client.example/path?q=1", nil)
	req.Header.Set("X-Test-ID", id)
	return u.RoundTrip(req)
}

func readAll(t testing.TB, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return string(b)
}

// metricValue reads one series from reg: a counter's or gauge's value, or a histogram's sample
// count. labels are name, value pairs. It reads through Gather so the test needs no protobuf
// import.
func metricValue(t testing.TB, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	v, _ := findSeries(t, reg, name, labels...)
	return v
}

// findSeries reads the first series of the metric called name whose labels include the given
// name/value pairs (as metricValue does), and reports whether there is one.
func findSeries(t testing.TB, reg *prometheus.Registry, name string, labels ...string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue series
				}
			}
			return m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// seriesCount counts the series of one metric family.
func seriesCount(t testing.TB, reg *prometheus.Registry, name string) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}
