package nbsync

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keel-cloud/keel/adapters/ovn"
)

// Metrics are the syncer's Prometheus metrics; every method is safe on a
// nil *Metrics. Labels are closed sets: kinds (ovn.Kind*), aggregate
// types, outcomes.
type Metrics struct {
	Active     prometheus.Gauge
	Repaired   *prometheus.CounterVec
	Deleted    *prometheus.CounterVec
	Reconciles *prometheus.CounterVec
	Duration   prometheus.Histogram
	Changes    *prometheus.CounterVec
}

// NewMetrics makes the metrics, for the caller to register (Collectors).
func NewMetrics() *Metrics {
	return &Metrics{
		Active: prometheus.NewGauge(prometheus.GaugeOpts{Name: "keel_ovn_active",
			Help: "1 while this keel serve holds the ovn-nb lease and writes the OVN Northbound database."}),
		Repaired: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keel_ovn_reconcile_repaired_total",
			Help: "Resources whose NB rows a reconcile made or repaired, by kind."}, []string{"kind"}),
		Deleted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keel_ovn_reconcile_deleted_total",
			Help: "Resources no longer desired whose NB rows (with Keel's ids) a reconcile deleted, by kind."}, []string{"kind"}),
		Reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keel_ovn_reconciles_total",
			Help: "Full reconciles of the NB, by outcome (clean, repaired, failed: some resources failed)."}, []string{"outcome"}),
		Duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "keel_ovn_reconcile_duration_seconds",
			Help: "Time of a full reconcile.", Buckets: []float64{0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120}}),
		Changes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keel_ovn_changes_total",
			Help: "Commits applied to the NB, by aggregate type and outcome (ok, failed: to be retried or parked)."}, []string{"aggregate", "outcome"}),
	}
}

// Collectors lists the metrics for registration.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Active, m.Repaired, m.Deleted, m.Reconciles, m.Duration, m.Changes}
}

func (m *Metrics) active(on bool) {
	if m == nil {
		return
	}
	if on {
		m.Active.Set(1)
	} else {
		m.Active.Set(0)
	}
}

func (m *Metrics) reconciled(rep ovn.Report, err error, took time.Duration) {
	if m == nil {
		return
	}
	for kind, n := range rep.Repaired {
		m.Repaired.WithLabelValues(kind).Add(float64(n))
	}
	for kind, n := range rep.Deleted {
		m.Deleted.WithLabelValues(kind).Add(float64(n))
	}
	outcome := "clean"
	switch {
	case err != nil:
		outcome = "failed"
	case rep.Changed():
		outcome = "repaired"
	}
	m.Reconciles.WithLabelValues(outcome).Inc()
	m.Duration.Observe(took.Seconds())
}

func (m *Metrics) applied(aggregate string, err error) {
	if m == nil {
		return
	}
	outcome := "ok"
	if err != nil {
		outcome = "failed"
	}
	m.Changes.WithLabelValues(aggregate, outcome).Inc()
}
