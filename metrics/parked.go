package metrics

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
)

// ParkedCounter counts the commits each subscription has parked.
type ParkedCounter interface {
	ParkedCounts(ctx context.Context) (map[string]int, error)
}

// parkedCollector reads the parking lot when Prometheus scrapes: records
// are added by any replica and removed by operators, so no process holds
// the count.
type parkedCollector struct {
	counter ParkedCounter
	desc    *prometheus.Desc
}

// CollectParked registers keel_parked_commits{subscription}. Subscription
// names are durable names (a closed set), never user input.
func (s *Set) CollectParked(c ParkedCounter) error {
	return s.Register(&parkedCollector{counter: c, desc: prometheus.NewDesc("keel_parked_commits",
		"Commits whose reaction kept failing, parked until an operator retries or skips them, by subscription.",
		[]string{"subscription"}, nil)})
}

// Describe implements prometheus.Collector.
func (c *parkedCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *parkedCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	counts, err := c.counter.ParkedCounts(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for sub, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), sub)
	}
}
