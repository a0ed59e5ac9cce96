package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	keeljs "github.com/keel-cloud/keel/adapters/jetstream"
	"github.com/keel-cloud/keel/projections"
)

// runRebuild fills a log with whole server lifecycles (builds, some failed,
// stops and starts, reboots, deletes, with their operations) and times
// Runner.RebuildAll of every projection (one pass over the log), as POST
// /v1/projections/all/rebuild does.
func runRebuild(ctx context.Context, e *benchEnv, res *results) error {
	_, pool, err := e.database(ctx, "bench_rebuild")
	if err != nil {
		return err
	}
	store, err := e.eventStore(ctx, "rebuild-jetstream")
	if err != nil {
		return err
	}
	head, err := fillLifecycles(ctx, e, store)
	if err != nil {
		return err
	}
	if err := createCheckpoints(ctx, pool); err != nil {
		return err
	}
	// At info: the runner logs the rebuild's phases (fill, indexes, swap).
	info := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	r := &projections.Runner{Pool: pool, Events: store, Projections: projections.All(), Log: info}
	start := time.Now()
	rrs, err := r.RebuildAll(ctx, projections.All())
	if err != nil {
		return err
	}
	took := time.Since(start)
	for _, rr := range rrs {
		logf("rebuilt %-16s %d commits to seq %d", rr.Projection, rr.Commits, rr.Sequence)
	}
	logf("rebuilt %d projections in one pass over %d commits in %s", len(rrs), head, took.Round(time.Millisecond))
	if err := logRows(ctx, pool); err != nil {
		return err
	}
	rate := float64(head) / took.Seconds()
	res.add("rebuild_seconds", took.Seconds(), "s", 1, none)
	res.add("rebuild_commits_per_s", rate, "commits/s", 0, rate/res.get("raw_pg_insert_rps"))
	return nil
}

// fillLifecycles registers the hosts and writes whole server lifecycles
// until the log holds the commits asked for; it returns the stream head.
func fillLifecycles(ctx context.Context, e *benchEnv, store *keeljs.Store) (uint64, error) {
	cfg := e.cfg
	g := &gen{app: newApp(store), tag: "rebuild", hosts: cfg.FakeHosts}
	start := time.Now()
	if err := g.registerHosts(ctx); err != nil {
		return 0, err
	}
	servers, err := g.fill(ctx, cfg.Writers, cfg.RebuildCommit, g.lifecycle)
	if err != nil {
		return 0, err
	}
	head, err := store.LastSequence(ctx)
	if err != nil {
		return 0, err
	}
	logf("appended %d commits (lifecycles of %d servers) with %d writers in %s (%.0f commits/s)",
		head, servers, cfg.Writers, time.Since(start).Round(time.Millisecond), float64(head)/time.Since(start).Seconds())
	return head, nil
}

// createCheckpoints creates the checkpoint rows a runner's first start
// would (Rebuild swaps under them), at sequence 0.
func createCheckpoints(ctx context.Context, pool *pgxpool.Pool) error {
	for _, p := range projections.All() {
		_, err := pool.Exec(ctx, `INSERT INTO projection_checkpoints (name, version, seq) VALUES ($1, $2, 0) ON CONFLICT (name) DO NOTHING`, p.Name, p.Version)
		if err != nil {
			return fmt.Errorf("checkpoint of %s: %w", p.Name, err)
		}
	}
	return nil
}

func logRows(ctx context.Context, pool *pgxpool.Pool) error {
	var servers, ops, steps, events int
	err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM servers), (SELECT count(*) FROM operations),
		(SELECT count(*) FROM operation_steps), (SELECT count(*) FROM events)`).Scan(&servers, &ops, &steps, &events)
	if err != nil {
		return err
	}
	logf("read model after the rebuild: %d servers, %d operations, %d steps, %d events", servers, ops, steps, events)
	return nil
}
