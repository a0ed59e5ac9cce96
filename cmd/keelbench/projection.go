package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	keeljs "github.com/keel-cloud/keel/adapters/jetstream"
	"github.com/keel-cloud/keel/projections"
)

// runProjection measures how fast the real projection runner applies
// server commits to Postgres, against raw batched inserts of as many rows
// into a copy of the servers table, and then the projection lag at a
// steady commit rate.
func runProjection(ctx context.Context, e *benchEnv, res *results) error {
	cfg := e.cfg
	_, pool, err := e.database(ctx, "bench_projection")
	if err != nil {
		return err
	}
	store, err := e.eventStore(ctx, "projection-jetstream")
	if err != nil {
		return err
	}
	g := &gen{app: newApp(store), tag: "projection", hosts: cfg.FakeHosts}
	start := time.Now()
	servers, err := g.fill(ctx, cfg.Writers, cfg.ProjCommits, g.buildSteps)
	if err != nil {
		return err
	}
	head, err := store.LastSequence(ctx)
	if err != nil {
		return err
	}
	logf("appended %d server commits (created, scheduled, spawned of %d servers) in %s (%.0f commits/s)",
		head, servers, time.Since(start).Round(time.Millisecond), float64(head)/time.Since(start).Seconds())
	applied, err := catchUp(ctx, e, pool, store, head)
	if err != nil {
		return err
	}
	raw, err := rawInserts(ctx, pool, int(head))
	if err != nil {
		return err
	}
	res.add("projection_apply_eps", applied, "events/s", 0, applied/raw)
	res.add("raw_pg_insert_rps", raw, "rows/s", 0, none)
	return runLag(ctx, e, pool, store, g, servers, res)
}

// startRunner runs a projection runner until the returned stop is called.
func startRunner(ctx context.Context, e *benchEnv, pool *pgxpool.Pool, store *keeljs.Store, ps []projections.Projection) (stop func() error) {
	r := &projections.Runner{Pool: pool, Events: store, Projections: ps, Log: e.log}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	return func() error { cancel(); return <-done }
}

// lowCheckpoint is what Runner.WaitFor compares with: the lowest
// checkpoint. It also returns the number of checkpoint rows.
func lowCheckpoint(ctx context.Context, pool *pgxpool.Pool) (uint64, int, error) {
	var low int64
	var rows int
	err := pool.QueryRow(ctx, `SELECT coalesce(min(seq), 0), count(*) FROM projection_checkpoints`).Scan(&low, &rows)
	return uint64(low), rows, err
}

// waitCheckpoint polls the lowest checkpoint every 2 ms until it reaches seq
// and every one of the runner's projections has its checkpoint row (a
// runner creates them as its projections start).
func waitCheckpoint(ctx context.Context, pool *pgxpool.Pool, seq uint64, projections int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		low, rows, err := lowCheckpoint(ctx, pool)
		if err != nil {
			return err
		}
		if low >= seq && rows >= projections {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("projections at %d, not at %d after %s", low, seq, limit)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// catchUp starts a runner over the Servers projection only, on a log that
// already holds head commits, and returns the events it applied per second
// until its checkpoint reached the head.
func catchUp(ctx context.Context, e *benchEnv, pool *pgxpool.Pool, store *keeljs.Store, head uint64) (float64, error) {
	start, cpu := time.Now(), snapCPU()
	stop := startRunner(ctx, e, pool, store, []projections.Projection{projections.Servers})
	err := waitCheckpoint(ctx, pool, head, 1, 10*time.Minute)
	took, used := time.Since(start), cpu.cpuSince()
	if err := errors.Join(err, stop()); err != nil {
		return 0, err
	}
	var rows int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM servers`).Scan(&rows); err != nil {
		return 0, err
	}
	rate := float64(head) / took.Seconds()
	logf("runner (servers projection only) applied %d commits, one event each, in %s: %.0f events/s; servers table has %d rows; %s",
		head, took.Round(time.Millisecond), rate, rows, used)
	return rate, nil
}

// rawInserts inserts n server rows into a copy of the servers table (same
// columns and indexes) with pgx.Batch, 1000 statements per transaction,
// and returns rows per second. A COPY into another copy is logged for
// scale, not used as the baseline.
func rawInserts(ctx context.Context, pool *pgxpool.Pool, n int) (float64, error) {
	if _, err := pool.Exec(ctx, `CREATE TABLE bench_servers (LIKE servers INCLUDING ALL);
		CREATE TABLE bench_servers_copy (LIKE servers INCLUDING ALL)`); err != nil {
		return 0, err
	}
	fl := []byte(`{"id":"` + benchFlavor.ID + `","name":"small","vcpus":1,"ram_mib":512,"disk_gib":1}`)
	row := func(i int) []any {
		now := time.Now().UTC()
		return []any{uuid.NewString(), fmt.Sprintf("raw-%d", i), benchFlavor.ID, fl, benchImage,
			"running", "NOSTATE", "scheduling", "BUILDING", uuid.NewString(), 1, now, now, i + 1}
	}
	start, cpu := time.Now(), snapCPU()
	for from := 0; from < n; from += 1000 {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			b := &pgx.Batch{}
			for i := from; i < min(n, from+1000); i++ {
				r := row(i) // the statement of the Servers projection for server.created
				b.Queue(`INSERT INTO bench_servers (id, name, flavor_id, flavor, image_id, desired, power, task, status, operation_id, version, created_at, updated_at, seq)
					VALUES ($1,$2,$3,$4,$5,'running','NOSTATE','scheduling','BUILDING',$6,$7,$8,$8,$9) ON CONFLICT (id) DO NOTHING`,
					r[0], r[1], r[2], r[3], r[4], r[9], r[10], r[11], r[13])
			}
			return tx.SendBatch(ctx, b).Close()
		})
		if err != nil {
			return 0, fmt.Errorf("raw insert: %w", err)
		}
	}
	rate := float64(n) / time.Since(start).Seconds()
	logf("raw pgx.Batch inserts: %d rows in %s: %.0f rows/s; %s", n, time.Since(start).Round(time.Millisecond), rate, cpu.cpuSince())
	return rate, copyForScale(ctx, pool, n, row)
}

// copyForScale logs the rate of one COPY of the same rows into another copy
// of the servers table: for scale, not the baseline.
func copyForScale(ctx context.Context, pool *pgxpool.Pool, n int, row func(int) []any) error {
	start := time.Now()
	rows := make([][]any, n)
	for i := range rows {
		rows[i] = row(i)
	}
	cols := []string{"id", "name", "flavor_id", "flavor", "image_id", "desired", "power", "task", "status", "operation_id", "version", "created_at", "updated_at", "seq"}
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"bench_servers_copy"}, cols, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("raw copy: %w", err)
	}
	logf("for scale, one COPY of the same rows: %.0f rows/s (not the baseline)", float64(n)/time.Since(start).Seconds())
	return nil
}
