package projections_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/eventlog"
	"github.com/keel-cloud/keel/projections"
)

// counting is a follower that counts the commits it hands over.
type counting struct {
	eventlog.Follower
	follows, commits atomic.Int64
}

func (c *counting) Follow(ctx context.Context, from, to uint64, fn func([]domain.Envelope) error) error {
	c.follows.Add(1)
	return c.Follower.Follow(ctx, from, to, func(batch []domain.Envelope) error {
		c.commits.Add(int64(len(batch)))
		return fn(batch)
	})
}

// Rebuilding every projection reads the log once, not once per projection,
// and gives the tables a build from scratch gives.
func TestRebuildAllReadsTheLogOnce(t *testing.T) {
	w := newWorld(t)
	w.servers("once", 12)
	pool := newDB(t)
	r := w.runner(pool)
	stop := start(t, r)
	h := w.caughtUp(r)
	must(t, stop())
	want := dump(t, pool)

	c := &counting{Follower: w.store}
	rb := &projections.Runner{Pool: pool, Events: c, Projections: projections.All(), Log: quietLog()}
	all := projections.All()
	res, err := rb.RebuildAll(ctxT(t), append(all, projections.Servers)) // named twice: rebuilt once
	must(t, err)
	if c.follows.Load() != 1 || c.commits.Load() != int64(h) {
		t.Fatalf("rebuild of %d projections followed the log %d times for %d commits; want once for %d",
			len(all), c.follows.Load(), c.commits.Load(), h)
	}
	if len(res) != len(all) {
		t.Fatalf("%d results for %d projections", len(res), len(all))
	}
	for i, rr := range res {
		if rr.Projection != all[i].Name || rr.Sequence != h || rr.Commits != h {
			t.Errorf("result %d = %+v; want %s at seq %d from %d commits", i, rr, all[i].Name, h, h)
		}
	}
	checkpoints(t, pool)
	sameTables(t, dump(t, pool), want)
}

// Projections whose versions changed are rebuilt at start in one pass too.
func TestChangedVersionsRebuildInOnePass(t *testing.T) {
	w := newWorld(t)
	w.servers("pass", 8)
	pool := newDB(t)
	r := w.runner(pool)
	stop := start(t, r)
	h := w.caughtUp(r)
	must(t, stop())
	want := dump(t, pool)
	ctx := ctxT(t)
	_, err := pool.Exec(ctx, `UPDATE projection_checkpoints SET version=0 WHERE name IN ('servers', 'events', 'operations')`)
	must(t, err)
	_, err = pool.Exec(ctx, `UPDATE servers SET name='stale'`)
	must(t, err)

	c := &counting{Follower: w.store}
	start(t, &projections.Runner{Pool: pool, Events: c, Projections: projections.All(), Log: quietLog()})
	deadline := time.Now().Add(20 * time.Second)
	for count(t, pool, `SELECT count(*) FROM projection_checkpoints WHERE version=0`) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("stale projections were not rebuilt")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := c.commits.Load(); n != int64(h) {
		t.Fatalf("rebuilding three projections at start read %d commits; want %d (the log once)", n, h)
	}
	checkpoints(t, pool)
	sameTables(t, dump(t, pool), want)
}

// A rebuild whose live projections moved on meanwhile takes each one's
// tail up to its own checkpoint, so the live runner neither skips nor
// repeats a commit after the swap.
func TestRebuildCatchesUpWithEachLiveCheckpoint(t *testing.T) {
	w := newWorld(t)
	w.servers("tail", 6)
	pool := newDB(t)
	r := w.runner(pool)
	stop := start(t, r)
	w.caughtUp(r)
	must(t, stop())
	// Hold the rebuild between its pass over the log and its swap: the live
	// runner applies more meanwhile (to every projection).
	held := &holding{Follower: w.store, after: make(chan struct{}), release: make(chan struct{})}
	rb := &projections.Runner{Pool: pool, Events: held, Projections: projections.All(), Log: quietLog()}
	done := make(chan error, 1)
	go func() {
		_, err := rb.RebuildAll(ctxT(t), []projections.Projection{projections.Servers, projections.Events})
		done <- err
	}()
	<-held.after
	live := w.runner(pool)
	start(t, live)
	w.servers("meanwhile", 4)
	w.caughtUp(live)
	close(held.release)
	must(t, <-done)
	w.servers("after", 2)
	h := w.caughtUp(live)
	if n := count(t, pool, `SELECT count(*) FROM events`); n != int(h) {
		t.Fatalf("events has %d rows after the rebuild, head is %d", n, h)
	}
	sameTables(t, dump(t, pool), w.fromScratch())
}

// holding pauses after its first Follow until release is closed.
type holding struct {
	eventlog.Follower
	first          atomic.Bool
	after, release chan struct{}
}

func (h *holding) Follow(ctx context.Context, from, to uint64, fn func([]domain.Envelope) error) error {
	err := h.Follower.Follow(ctx, from, to, fn)
	if h.first.CompareAndSwap(false, true) {
		close(h.after)
		<-h.release
	}
	return err
}

// A rebuild builds the copies' secondary indexes after filling them; the
// tables swapped in must have every index and key the live ones had.
func TestRebuildKeepsEveryIndexAndKey(t *testing.T) {
	w := newWorld(t)
	w.servers("idx", 3)
	pool := newDB(t)
	r := w.runner(pool)
	stop := start(t, r)
	w.caughtUp(r)
	must(t, stop())
	shape := func() map[string]string {
		out := map[string]string{}
		for _, tb := range tables() {
			var s string
			err := pool.QueryRow(ctxT(t), `SELECT string_agg(def, E'\n' ORDER BY def) FROM (
				SELECT regexp_replace(pg_get_indexdef(i.indexrelid), '^(CREATE (UNIQUE )?INDEX) \S+ ON \S+', '\1 ON t') ||
					coalesce(' constraint ' || c.contype::text || ' ' || pg_get_constraintdef(c.oid), '') AS def
				FROM pg_index i LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
				WHERE i.indrelid = $1::regclass) d`, tb).Scan(&s)
			must(t, err)
			out[tb] = s
		}
		return out
	}
	before := shape()
	if !strings.Contains(before["events"], "USING gin (types)") || !strings.Contains(before["servers"], "WHERE (task IS NOT NULL)") {
		t.Fatalf("the live tables lack the indexes this test looks for: %v", before)
	}
	_, err := r.RebuildAll(ctxT(t), projections.All())
	must(t, err)
	after := shape()
	for _, tb := range tables() {
		if before[tb] != after[tb] {
			t.Errorf("table %s after a rebuild has indexes\n%s\nwant\n%s", tb, after[tb], before[tb])
		}
	}
}
