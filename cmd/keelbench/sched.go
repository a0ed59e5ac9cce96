package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/keel-cloud/keel/domain/host"
	"github.com/keel-cloud/keel/domain/scheduler"
)

// runScheduler measures the pure scheduler (filters and weighers) on
// synthetic snapshots of growing size: the time of one decision.
func runScheduler(ctx context.Context, e *benchEnv, res *results) error {
	req := scheduler.Request{Resources: host.Resources{VCPUs: 2, RAMMiB: 4096, DiskGiB: 40},
		ImageMin: host.Resources{RAMMiB: 512, DiskGiB: 1}}
	var prev float64
	for _, n := range []int{100, 1000, 10000} {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		hosts := syntheticHosts(n)
		r := scheduler.Schedule(hosts, req, scheduler.DefaultWeights)
		if len(r.Candidates) == 0 {
			return fmt.Errorf("%d hosts: %s", n, r.Explain())
		}
		// Rounds of at least 300 ms each; the median round is reported.
		var perRound []float64
		for range 5 {
			start, calls := time.Now(), 0
			for time.Since(start) < 300*time.Millisecond {
				scheduler.Schedule(hosts, req, scheduler.DefaultWeights)
				calls++
			}
			perRound = append(perRound, float64(time.Since(start).Microseconds())/float64(calls))
		}
		slices.Sort(perRound)
		us := perRound[len(perRound)/2]
		logf("  %d hosts: %d candidates, %.1f µs per decision (rounds %.1f..%.1f); %s", n, len(r.Candidates), us,
			perRound[0], perRound[len(perRound)-1], r.Explain())
		if prev > 0 {
			logf("  %d hosts / %d hosts: %.1fx the time for 10x the hosts", n, n/10, us/prev)
		}
		prev = us
		res.add(fmt.Sprintf("scheduler_decision_us_%d", n), us, "µs", 1, none)
	}
	return nil
}

// syntheticHosts is a snapshot of n hosts of one size with varied use: a
// few are full, disabled or down, the rest are between empty and nearly full.
func syntheticHosts(n int) []scheduler.Host {
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	limit := host.Resources{VCPUs: 64 * 4, RAMMiB: 256 * 1024, DiskGiB: 4000}
	out := make([]scheduler.Host, n)
	for i := range out {
		f := rng.Float64()
		if i%50 == 0 {
			f = 1 // full
		}
		out[i] = scheduler.Host{Name: fmt.Sprintf("host-%05d", i), Enabled: i%97 != 0, Up: i%89 != 0,
			AZ: fmt.Sprintf("az-%d", i%3), Traits: []string{"ssd"}, Limit: limit,
			Used: host.Resources{VCPUs: int(f * float64(limit.VCPUs)), RAMMiB: int(f * float64(limit.RAMMiB)), DiskGiB: int(rng.Float64() * float64(limit.DiskGiB) * 0.9)}}
	}
	return out
}
