package main

import (
	"cmp"
	"context"
	"errors"
	"math"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	keeljs "github.com/keel-cloud/keel/adapters/jetstream"
	"github.com/keel-cloud/keel/projections"
)

// sighting is the first time the lowest checkpoint was seen at seq.
type sighting struct {
	at  time.Time
	seq uint64
}

// paced is one paced commit: when its append was acknowledged, at what seq.
type paced struct {
	ack time.Time
	seq uint64
}

// runLag appends server commits at a steady rate while a runner follows,
// and measures each commit's lag: from its append's acknowledgement until
// a poll (every 2 ms) of the lowest checkpoint shows it applied.
func runLag(ctx context.Context, e *benchEnv, pool *pgxpool.Pool, store *keeljs.Store, g *gen, firstServer int, res *results) error {
	cfg := e.cfg
	ps, which := []projections.Projection{projections.Servers}, "servers projection only"
	if cfg.LagAll {
		ps, which = projections.All(), "all projections"
	}
	stopRunner := startRunner(ctx, e, pool, store, ps)
	defer func() { _ = stopRunner() }()
	head, err := store.LastSequence(ctx)
	if err != nil {
		return err
	}
	if err := waitCheckpoint(ctx, pool, head, len(ps), 10*time.Minute); err != nil {
		return err
	}
	total := int(float64(cfg.LagRate) * cfg.LagDuration.Seconds())
	logf("lag: %d commits at %d/s with the runner following (%s)", total, cfg.LagRate, which)
	commits, seen, took, err := pacedRun(ctx, pool, g, firstServer, total, cfg)
	if err != nil {
		return err
	}
	return reportLag(commits, seen, took, res)
}

// pacedRun paces the commits while polling the lowest checkpoint, until the
// checkpoint covers the last commit.
func pacedRun(ctx context.Context, pool *pgxpool.Pool, g *gen, firstServer, total int, cfg config) ([]paced, []sighting, time.Duration, error) {
	var until atomic.Uint64
	until.Store(math.MaxUint64)
	pctx, stopPoll := context.WithTimeout(ctx, cfg.LagDuration+2*time.Minute)
	defer stopPoll()
	sightings := make(chan []sighting, 1)
	go func() { sightings <- poll(pctx, pool, &until) }()
	commits, took, err := pace(ctx, g, firstServer, total, cfg.LagRate)
	if err != nil {
		stopPoll()
		<-sightings
		return nil, nil, 0, err
	}
	until.Store(slices.MaxFunc(commits, func(a, b paced) int { return cmp.Compare(a.seq, b.seq) }).seq)
	return commits, <-sightings, took, nil
}

func reportLag(commits []paced, seen []sighting, took time.Duration, res *results) error {
	lags, missed, worstAt := lagsOf(commits, seen)
	if len(lags) == 0 {
		return errors.New("lag: no commit was seen applied")
	}
	start := commits[0].ack
	logf("lag: achieved %.0f commits/s; %d lags measured (%d not seen); p50 %.1f ms, p99 %.1f ms, max %.1f ms (appended %.1f s into the run)",
		float64(len(commits))/took.Seconds(), len(lags), missed, ms(percentile(lags, 50)), ms(percentile(lags, 99)),
		ms(lags[len(lags)-1]), worstAt.Sub(start).Seconds())
	if i, gap := longestPause(seen); gap > 0 {
		logf("lag: the lowest checkpoint's longest pause was %.0f ms, %.1f s into the run (from seq %d)",
			ms(gap), seen[i].at.Sub(start).Seconds(), seen[i].seq)
	}
	res.add("projection_lag_p50_ms", ms(percentile(lags, 50)), "ms", 1, none)
	res.add("projection_lag_p99_ms", ms(percentile(lags, 99)), "ms", 1, none)
	return nil
}

// poll records every change of the lowest checkpoint until it reaches
// until, or ctx ends.
func poll(ctx context.Context, pool *pgxpool.Pool, until *atomic.Uint64) []sighting {
	var out []sighting
	var last uint64
	for ctx.Err() == nil && last < until.Load() {
		low, _, err := lowCheckpoint(ctx, pool)
		if err == nil && low != last {
			out = append(out, sighting{at: time.Now(), seq: low})
			last = low
		}
		time.Sleep(2 * time.Millisecond)
	}
	return out
}

// pace issues total build commits at rate per second, spread over many
// servers; the steps of one server go to the same worker, in order. It
// returns every commit's acknowledgement and the time from the first
// scheduled append to the last acknowledgement.
func pace(ctx context.Context, g *gen, firstServer, total, rate int) ([]paced, time.Duration, error) {
	const workers, block = 64, 50
	out := make([]paced, total)
	queues := make([]chan int, workers)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for w := range queues {
		queues[w] = make(chan int, total)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range queues[w] {
				srv, step := commitAt(firstServer, c, block)
				seq, err := g.buildSteps(srv)[step](ctx)
				out[c] = paced{ack: time.Now(), seq: seq}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	start := time.Now()
	interval := time.Second / time.Duration(rate)
	for c := 0; c < total && ctx.Err() == nil; c++ {
		if d := time.Until(start.Add(time.Duration(c) * interval)); d > 0 {
			time.Sleep(d)
		}
		srv, _ := commitAt(firstServer, c, block)
		queues[srv%workers] <- c
	}
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	return out, time.Since(start), errors.Join(append(errs, ctx.Err())...)
}

// commitAt maps the c-th paced commit to a server and a build step, so
// that consecutive commits go to different servers: blocks of servers
// are created, then scheduled, then spawned.
func commitAt(firstServer, c, block int) (server, step int) {
	round, in := c/(3*block), c%(3*block)
	return firstServer + round*block + in%block, in / block
}

// lagsOf matches each commit with the first sighting that covers it; it
// also returns how many were not seen and when the worst one was appended.
func lagsOf(commits []paced, seen []sighting) (lags []time.Duration, missed int, worstAt time.Time) {
	var worst time.Duration
	for _, c := range commits {
		i := sort.Search(len(seen), func(i int) bool { return seen[i].seq >= c.seq })
		if i == len(seen) {
			missed++
			continue
		}
		lag := max(0, seen[i].at.Sub(c.ack))
		if lag > worst {
			worst, worstAt = lag, c.ack
		}
		lags = append(lags, lag)
	}
	slices.Sort(lags)
	return lags, missed, worstAt
}

// longestPause returns the index of the sighting after which the
// checkpoint stood still the longest, and for how long.
func longestPause(seen []sighting) (int, time.Duration) {
	at, gap := 0, time.Duration(0)
	for i := 1; i < len(seen); i++ {
		if d := seen[i].at.Sub(seen[i-1].at); d > gap {
			at, gap = i-1, d
		}
	}
	return at, gap
}
