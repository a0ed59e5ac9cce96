// Package metrics holds Keel's Prometheus metrics: one Set per node, on a
// registry the node owns (tests run several nodes in one process, so
// nothing goes to the global default registry), and a collector that reads
// the gauges living in the read model (hosts, claims, projection lag) at
// scrape time.
//
// Every method of Set is safe on a nil *Set, so code that records metrics
// needs no checks and tests may leave the Set out. Label values come from
// closed sets (route patterns, aggregate and command types, outcomes), never
// from user input, so the number of series stays bounded.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Set is one node's metrics.
type Set struct {
	reg *prometheus.Registry

	httpRequests     *prometheus.CounterVec
	httpDuration     *prometheus.HistogramVec
	commandsAppended *prometheus.CounterVec
	commandsRefused  *prometheus.CounterVec
	sagaOperations   *prometheus.CounterVec
	sagaDuration     *prometheus.HistogramVec
}

// New returns a Set on a fresh registry that also carries the Go runtime
// and process collectors.
func New() *Set {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s := &Set{
		reg: reg,
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keel_http_requests_total",
			Help: "HTTP requests answered, by method, route pattern and status code.",
		}, []string{"method", "route", "status"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keel_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by method, route pattern and status code.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route", "status"}),
		commandsAppended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keel_commands_appended_total",
			Help: "Commands whose events were appended to the log, by aggregate type and command.",
		}, []string{"aggregate", "command"}),
		commandsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keel_commands_refused_total",
			Help: "Commands refused, by aggregate type, command and reason (invalid, conflict, not_found, concurrency).",
		}, []string{"aggregate", "command", "reason"}),
		sagaOperations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keel_saga_operations_total",
			Help: "Operations that ended, by kind and outcome (succeeded, failed).",
		}, []string{"kind", "outcome"}),
		sagaDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keel_saga_operation_duration_seconds",
			Help:    "Time from the start of an operation to its end, by kind and outcome.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}, []string{"kind", "outcome"}),
	}
	reg.MustRegister(s.httpRequests, s.httpDuration, s.commandsAppended, s.commandsRefused, s.sagaOperations, s.sagaDuration)
	return s
}

// Handler serves the registry in the Prometheus text format.
func (s *Set) Handler() http.Handler {
	if s == nil {
		return http.NotFoundHandler()
	}
	// A read-model query that fails leaves its family out; the rest is served.
	return promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg, ErrorHandling: promhttp.ContinueOnError})
}

// Register adds a collector to the node's registry.
func (s *Set) Register(c prometheus.Collector) error {
	if s == nil {
		return nil
	}
	return s.reg.Register(c)
}

// Gatherer exposes the registry, for tests and other exporters.
func (s *Set) Gatherer() prometheus.Gatherer { return s.reg }

// Request records one answered HTTP request. route is the matched route
// pattern ("unmatched" when none matched), never the raw path.
func (s *Set) Request(method, route string, status int, d time.Duration) {
	if s == nil {
		return
	}
	code := strconv.Itoa(status)
	s.httpRequests.WithLabelValues(method, route, code).Inc()
	s.httpDuration.WithLabelValues(method, route, code).Observe(d.Seconds())
}

// CommandAppended counts a command whose events were appended.
func (s *Set) CommandAppended(aggregate, command string) {
	if s == nil {
		return
	}
	s.commandsAppended.WithLabelValues(aggregate, command).Inc()
}

// CommandRefused counts a refused command; reason is the kind of refusal.
func (s *Set) CommandRefused(aggregate, command, reason string) {
	if s == nil {
		return
	}
	s.commandsRefused.WithLabelValues(aggregate, command, reason).Inc()
}

// OperationEnded counts an operation that reached a terminal outcome and
// records how long it took.
func (s *Set) OperationEnded(kind, outcome string, d time.Duration) {
	if s == nil {
		return
	}
	s.sagaOperations.WithLabelValues(kind, outcome).Inc()
	s.sagaDuration.WithLabelValues(kind, outcome).Observe(max(d, 0).Seconds())
}
