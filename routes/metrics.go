package routes

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics holds the router's Prometheus collectors. A nil *Metrics records nothing, so tests and
// embedders that do not scrape can leave Deps.Metrics unset.
type Metrics struct {
	mirror  *prometheus.CounterVec
	compare *prometheus.CounterVec
}

// NewMetrics creates the router's collectors and registers them on reg (nil: not registered, still
// usable). Call it once per process and share the result across reloads: series keep counting when
// a new snapshot is built. Registering twice on the same registry reuses the collectors already
// there instead of panicking, so a second call is harmless.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		mirror: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portico_mirror_total",
			Help: "Mirrored (shadow) requests by route and result: sent (the shadow answered), dropped (not sent: concurrency limit, body too large or shutting down), error (the shadow call failed).",
		}, []string{"route", "result"}),
		compare: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portico_mirror_compare_total",
			Help: "Comparisons of shadow and primary responses by route and result: match, mismatch, error (one side failed or was too large to compare).",
		}, []string{"route", "result"}),
	}
	if reg != nil {
		m.mirror = register(reg, m.mirror)
		m.compare = register(reg, m.compare)
	}
	return m
}

func register(reg prometheus.Registerer, c *prometheus.CounterVec) *prometheus.CounterVec {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing
			}
		}
		// A clashing collector of another type: keep counting unregistered rather than fail the
		// whole build over metrics.
	}
	return c
}

// mirrorCounters are one route's series, resolved at build time so that the request path does no
// label lookups.
type mirrorCounters struct {
	sent, dropped, failed                 prometheus.Counter
	compareMatch, compareMiss, compareErr prometheus.Counter
}

// nopCounter satisfies prometheus.Counter for a nil *Metrics.
type nopCounter struct{ prometheus.Counter }

func (nopCounter) Inc()        {}
func (nopCounter) Add(float64) {}

func (m *Metrics) forRoute(route string) mirrorCounters {
	if m == nil {
		n := nopCounter{}
		return mirrorCounters{n, n, n, n, n, n}
	}
	return mirrorCounters{
		sent:         m.mirror.WithLabelValues(route, "sent"),
		dropped:      m.mirror.WithLabelValues(route, "dropped"),
		failed:       m.mirror.WithLabelValues(route, "error"),
		compareMatch: m.compare.WithLabelValues(route, "match"),
		compareMiss:  m.compare.WithLabelValues(route, "mismatch"),
		compareErr:   m.compare.WithLabelValues(route, "error"),
	}
}
