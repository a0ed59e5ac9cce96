package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// HostCounter counts hosts and the claims they hold (the read model).
type HostCounter interface {
	HostCounts(ctx context.Context) (up, down, claims int, err error)
}

// LagReader reports how many commits each projection is behind the stream.
type LagReader interface {
	Lags(ctx context.Context) (map[string]uint64, error)
}

// scrapeTimeout bounds the read-model queries of one scrape.
const scrapeTimeout = 5 * time.Second

// readModelCollector reads the gauges that live in the read model when
// Prometheus scrapes, instead of threading them through the code that
// changes them (which may run in another replica).
type readModelCollector struct {
	hosts HostCounter
	lags  LagReader

	hostsDesc  *prometheus.Desc
	claimsDesc *prometheus.Desc
	lagDesc    *prometheus.Desc
}

// CollectReadModel registers the collector of hosts up and down, claims and
// projection lag.
func (s *Set) CollectReadModel(h HostCounter, l LagReader) error {
	return s.Register(&readModelCollector{
		hosts: h, lags: l,
		hostsDesc: prometheus.NewDesc("keel_scheduler_hosts",
			"Registered hosts by liveness state (up, down), from the read model.", []string{"state"}, nil),
		claimsDesc: prometheus.NewDesc("keel_scheduler_claims",
			"Capacity claims held on hosts, from the read model.", nil, nil),
		lagDesc: prometheus.NewDesc("keel_projection_lag_commits",
			"Commits in the stream that a projection has not applied yet.", []string{"projection"}, nil),
	})
}

// Describe implements prometheus.Collector.
func (c *readModelCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.hostsDesc
	ch <- c.claimsDesc
	ch <- c.lagDesc
}

// Collect implements prometheus.Collector. A failed query yields an
// invalid metric for its family; the handler serves the others.
func (c *readModelCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	if up, down, claims, err := c.hosts.HostCounts(ctx); err != nil {
		ch <- prometheus.NewInvalidMetric(c.hostsDesc, err)
	} else {
		ch <- prometheus.MustNewConstMetric(c.hostsDesc, prometheus.GaugeValue, float64(up), "up")
		ch <- prometheus.MustNewConstMetric(c.hostsDesc, prometheus.GaugeValue, float64(down), "down")
		ch <- prometheus.MustNewConstMetric(c.claimsDesc, prometheus.GaugeValue, float64(claims))
	}
	lags, err := c.lags.Lags(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.lagDesc, err)
		return
	}
	for name, lag := range lags {
		ch <- prometheus.MustNewConstMetric(c.lagDesc, prometheus.GaugeValue, float64(lag), name)
	}
}
