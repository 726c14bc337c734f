package gateway

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// edgeMetrics are the per-request series. Label lookups in client_golang hash the label values on
// every call; the gateway caches the resolved series in a copy-on-write map instead, so the hot
// path does one map read and no allocation once a (route, upstream, status) has been seen.
type edgeMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec

	mu    sync.Mutex
	cache atomic.Pointer[map[seriesKey]series]
}

type seriesKey struct {
	route, upstream string
	status          int
}

type series struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

func newEdgeMetrics(reg prometheus.Registerer) *edgeMetrics {
	m := &edgeMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portico_requests_total",
			Help: "Client requests served, by route (or BFF), upstream and status.",
		}, []string{"route", "upstream", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "portico_request_duration_seconds",
			Help:    "Time from receiving a client request to finishing its answer, by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
	}
	reg.MustRegister(m.requests, m.duration)
	empty := map[seriesKey]series{}
	m.cache.Store(&empty)
	return m
}

func (m *edgeMetrics) observe(route, upstream string, status int, d time.Duration) {
	k := seriesKey{route, upstream, status}
	s, ok := (*m.cache.Load())[k]
	if !ok {
		s = m.add(k)
	}
	s.requests.Inc()
	s.duration.Observe(d.Seconds())
}

func (m *edgeMetrics) add(k seriesKey) series {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.cache.Load()
	if s, ok := old[k]; ok {
		return s
	}
	s := series{
		requests: m.requests.WithLabelValues(k.route, k.upstream, strconv.Itoa(k.status)),
		duration: m.duration.WithLabelValues(k.route),
	}
	// Unmatched paths are a single series (route ""), so scanners cannot grow this map without
	// bound; statuses are bounded by HTTP itself.
	next := make(map[seriesKey]series, len(old)+1)
	for key, v := range old {
		next[key] = v
	}
	next[k] = s
	m.cache.Store(&next)
	return s
}
