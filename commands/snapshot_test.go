package commands_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
	"testing"

	keeljs "github.com/keel-cloud/keel/adapters/jetstream"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
)

// tally counts the commits a store hands out, besides its Load calls.
type tally struct {
	*counted
	mu      sync.Mutex
	commits int
}

func (c *tally) Load(ctx context.Context, typ, id string, after uint64) ([]domain.Envelope, error) {
	envs, err := c.counted.Load(ctx, typ, id, after)
	c.mu.Lock()
	c.commits += len(envs)
	c.mu.Unlock()
	return envs, err
}

func (c *tally) read() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.commits
}

func snapshotted(store commands.EventStore, snaps commands.SnapshotStore) *commands.Handler[counterState, inc] {
	h := newCounter(store)
	commands.UseSnapshots(h, snaps, 500, nil)
	return h
}

// fillCounter appends n commits to one counter, with command ids cmd-0001...
func fillCounter(t *testing.T, h *commands.Handler[counterState, inc], id string, n int) []commands.Result[counterState] {
	t.Helper()
	out := make([]commands.Result[counterState], 0, n)
	for i := 1; i <= n; i++ {
		r, err := h.Handle(ctxT(t), id, inc{Tag: fmt.Sprint(i)}, meta(fmt.Sprintf("cmd-%04d", i)))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	h.WaitSnapshots()
	return out
}

// After a restart, a long-lived aggregate loads from its snapshot and the
// commits after it, into the state a full replay gives, and a command
// retried from before the snapshot is still recognised as a duplicate.
func TestColdLoadReadsSnapshotAndTail(t *testing.T) {
	s := openStore(t)
	ctx := ctxT(t)
	snaps, err := keeljs.OpenSnapshots(ctx, s.JS, 1)
	if err != nil {
		t.Fatal(err)
	}
	const n = 2_100
	results := fillCounter(t, snapshotted(s, snaps), "long", n)

	ts := &tally{counted: newCounted(s)}
	cold := snapshotted(ts, snaps) // a new process on the same log and bucket
	st, v, err := cold.Load(ctx, "long")
	if err != nil {
		t.Fatal(err)
	}
	if got := ts.read(); got >= 500 {
		t.Fatalf("cold load read %d commits; a snapshot every 500 leaves fewer than 500 after it", got)
	}
	t.Logf("cold load read %d commits in %d store loads", ts.read(), ts.loadCount())
	want, wv, err := newCounter(s).Load(ctx, "long") // full replay
	if err != nil {
		t.Fatal(err)
	}
	if v != n || wv != n || !reflect.DeepEqual(st, want) {
		t.Fatalf("restored v%d N=%d, full replay v%d N=%d: states differ", v, st.N, wv, want.N)
	}

	// cmd-1500 is before the last snapshot (at 2000) and among the last
	// RecentCommands commands: a retry is a duplicate, not a new commit.
	before := head(t, s)
	d, err := cold.Handle(ctx, "long", inc{Tag: "again"}, meta("cmd-1500"))
	if err != nil {
		t.Fatal(err)
	}
	if !d.Duplicate || d.Seq != results[1499].Seq || d.Version != n {
		t.Fatalf("retry of cmd-1500 after a restart = seq %d v%d duplicate=%v; want duplicate of seq %d", d.Seq, d.Version, d.Duplicate, results[1499].Seq)
	}
	if after := head(t, s); after != before {
		t.Fatalf("the retried command wrote %d commits", after-before)
	}
}

// A snapshot is a cache: one that is corrupt, of another format or state
// shape, or that does not continue the log is ignored for a full replay,
// which writes a good snapshot again.
func TestUnusableSnapshotFallsBackToReplay(t *testing.T) {
	s := openStore(t)
	ctx := ctxT(t)
	snaps := &commands.MemorySnapshots{}
	fillCounter(t, snapshotted(s, snaps), "c", 1_100)
	good, found, _ := snaps.Get(ctx, "counter", "c")
	if !found {
		t.Fatal("no snapshot after 1,100 commits")
	}
	edit := func(field string, v any) []byte {
		var m map[string]any
		if err := json.Unmarshal(good, &m); err != nil {
			t.Fatal(err)
		}
		m[field] = v
		b, _ := json.Marshal(m)
		return b
	}
	want, _, _ := newCounter(s).Load(ctx, "c")
	for name, bad := range map[string][]byte{
		"garbage":     []byte("{not json"),
		"bad state":   edit("state", map[string]any{"N": "many"}),
		"new format":  edit("format", 99),
		"other shape": edit("shape", "0123456789abcdef"),
		"other type":  edit("type", "server"),
		"gap":         edit("version", 7), // the next commit's version does not follow
	} {
		t.Run(name, func(t *testing.T) {
			if err := snaps.Put(ctx, "counter", "c", bad); err != nil {
				t.Fatal(err)
			}
			ts := &tally{counted: newCounted(s)}
			h := snapshotted(ts, snaps)
			st, v, err := h.Load(ctx, "c")
			if err != nil {
				t.Fatal(err)
			}
			if v != 1_100 || !reflect.DeepEqual(st, want) {
				t.Fatalf("load over a %s snapshot: v%d N=%d; want v1100 N=%d", name, v, st.N, want.N)
			}
			if name != "gap" && ts.read() != 1_100 {
				t.Fatalf("read %d commits; an unusable snapshot means a full replay of 1,100", ts.read())
			}
			h.WaitSnapshots()
			if again, _, _ := snaps.Get(ctx, "counter", "c"); !json.Valid(again) || string(again) == string(bad) {
				t.Fatalf("the replay did not write a good snapshot again: %.80s", again)
			}
		})
	}
}

// Aggregates with fewer commits than the interval are never snapshotted,
// and an aggregate loaded by a full replay gets its first snapshot then.
func TestSnapshotsOnlyForLongAggregates(t *testing.T) {
	s := openStore(t)
	ctx := ctxT(t)
	fillCounter(t, newCounter(s), "long", 600) // written before snapshots existed
	snaps := &commands.MemorySnapshots{}
	h := snapshotted(s, snaps)
	fillCounter(t, h, "short", 499)
	if snaps.Puts() != 0 {
		t.Fatalf("%d snapshots of an aggregate with 499 commits", snaps.Puts())
	}
	if _, _, err := h.Load(ctx, "long"); err != nil {
		t.Fatal(err)
	}
	h.WaitSnapshots()
	if _, found, _ := snaps.Get(ctx, "counter", "long"); !found || snaps.Puts() != 1 {
		t.Fatalf("after a full replay of 600 commits: found=%v, %d snapshots written; want 1", found, snaps.Puts())
	}
}
