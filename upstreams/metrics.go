package upstreams

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics holds the upstream layer's Prometheus collectors. Create it once per process and pass it
// to every Registry (reloads included) through Options; a nil *Metrics records nothing.
type Metrics struct {
	duration  *prometheus.HistogramVec
	requests  *prometheus.CounterVec
	healthy   *prometheus.GaugeVec
	retries   *prometheus.CounterVec
	breaker   *prometheus.GaugeVec
	ejections *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them with reg (nil: not registered, still
// usable). Collectors already registered under the same names are reused, so a second call with
// the same registerer does not panic.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "portico_upstream_duration_seconds",
			Help:    "Time from sending one attempt to a target until its response headers (or failure).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"upstream", "target"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portico_upstream_requests_total",
			Help: "Attempts sent to a target, by outcome: a status class (2xx..5xx) or connect_failure, timeout, error, canceled.",
		}, []string{"upstream", "target", "outcome"}),
		healthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "portico_upstream_healthy",
			Help: "1 when the target receives traffic (healthy and not ejected), else 0.",
		}, []string{"upstream", "target"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portico_upstream_retries_total",
			Help: "Retries sent after a failed attempt.",
		}, []string{"upstream"}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "portico_upstream_breaker_state",
			Help: "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
		}, []string{"upstream"}),
		ejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portico_upstream_ejections_total",
			Help: "Times a target was ejected by passive health checking.",
		}, []string{"upstream", "target"}),
	}
	if reg != nil {
		m.duration = register(reg, m.duration)
		m.requests = register(reg, m.requests)
		m.healthy = register(reg, m.healthy)
		m.retries = register(reg, m.retries)
		m.breaker = register(reg, m.breaker)
		m.ejections = register(reg, m.ejections)
	}
	return m
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		// A different collector under our name is a programming error caught by the first test.
		panic("upstreams: registering metrics: " + err.Error())
	}
	return c
}

// outcome is the label of one attempt in portico_upstream_requests_total.
type outcome uint8

const (
	outcome1xx outcome = iota
	outcome2xx
	outcome3xx
	outcome4xx
	outcome5xx
	outcomeConnectFailure
	outcomeTimeout
	outcomeError
	outcomeCanceled
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"1xx", "2xx", "3xx", "4xx", "5xx", "connect_failure", "timeout", "error", "canceled"}

func statusOutcome(code int) outcome {
	switch {
	case code < 200:
		return outcome1xx
	case code < 300:
		return outcome2xx
	case code < 400:
		return outcome3xx
	case code < 500:
		return outcome4xx
	}
	return outcome5xx
}

// targetMetrics are one target's children, resolved when the registry is built so that the
// request path does no label hashing. Zero value: no metrics.
type targetMetrics struct {
	duration  prometheus.Observer
	requests  [numOutcomes]prometheus.Counter
	healthy   prometheus.Gauge
	ejections prometheus.Counter
}

func (m *Metrics) forTarget(upstream, target string) targetMetrics {
	var tm targetMetrics
	if m == nil {
		return tm
	}
	tm.duration = m.duration.WithLabelValues(upstream, target)
	for i := range tm.requests {
		tm.requests[i] = m.requests.WithLabelValues(upstream, target, outcomeNames[i])
	}
	tm.healthy = m.healthy.WithLabelValues(upstream, target)
	tm.ejections = m.ejections.WithLabelValues(upstream, target)
	return tm
}

// forgetTarget deletes every series of one target.
func (m *Metrics) forgetTarget(upstream, target string) {
	labels := prometheus.Labels{"upstream": upstream, "target": target}
	m.duration.DeletePartialMatch(labels)
	m.requests.DeletePartialMatch(labels)
	m.healthy.DeletePartialMatch(labels)
	m.ejections.DeletePartialMatch(labels)
}

// upstreamMetrics are one upstream's children. Zero value: no metrics.
type upstreamMetrics struct {
	retries prometheus.Counter
	breaker prometheus.Gauge
}

func (m *Metrics) forUpstream(upstream string, breaker bool) upstreamMetrics {
	var um upstreamMetrics
	if m == nil {
		return um
	}
	um.retries = m.retries.WithLabelValues(upstream)
	if breaker {
		um.breaker = m.breaker.WithLabelValues(upstream)
		um.breaker.Set(0)
	}
	return um
}
