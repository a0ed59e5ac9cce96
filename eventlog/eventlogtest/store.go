package eventlogtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/keel-cloud/keel/eventlog"
)

func appendIsOptimisticPerAggregate(t *testing.T, l eventlog.Log) {
	ctx := ctxT(t)
	if head, err := l.LastSequence(ctx); err != nil || head != 0 {
		t.Fatalf("LastSequence of an empty log = %d, %v; want 0", head, err)
	}
	seq1 := MustAppend(t, l, Envelope(t, "flavor", "a", 1, "c1"), 0)
	if seq1 != 1 {
		t.Fatalf("first append landed at %d, want 1", seq1)
	}
	seq2 := MustAppend(t, l, Envelope(t, "flavor", "a", 2, "c2"), seq1)

	// A writer that read the aggregate at seq1 is too late now.
	if _, dup, err := l.Append(ctx, Envelope(t, "flavor", "a", 2, "c3"), seq1); !errors.Is(err, eventlog.ErrConcurrency) {
		t.Fatalf("stale append: err = %v (dup %v), want ErrConcurrency", err, dup)
	}
	// Creating an aggregate that already exists (expected 0) is a conflict too.
	if _, _, err := l.Append(ctx, Envelope(t, "flavor", "a", 1, "c4"), 0); !errors.Is(err, eventlog.ErrConcurrency) {
		t.Fatalf("append with expected 0 to an existing aggregate: err = %v, want ErrConcurrency", err)
	}
	// Another aggregate, or the same id of another type, is independent.
	if seq := MustAppend(t, l, Envelope(t, "flavor", "b", 1, "c5"), 0); seq != seq2+1 {
		t.Fatalf("append to a new aggregate landed at %d, want %d", seq, seq2+1)
	}
	MustAppend(t, l, Envelope(t, "image", "a", 1, "c6"), 0)
	if head, err := l.LastSequence(ctx); err != nil || head != 4 {
		t.Fatalf("LastSequence = %d, %v; want 4 (refused appends must not land)", head, err)
	}
}

// Writers that read the same version race: exactly one lands.
func concurrentAppendsLandOnce(t *testing.T, l eventlog.Log) {
	ctx := ctxT(t)
	seq1 := MustAppend(t, l, Envelope(t, "server", "s", 1, "first"), 0)
	const writers = 8
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, errs[i] = l.Append(ctx, Envelope(t, "server", "s", 2, fmt.Sprint("racer-", i)), seq1)
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, eventlog.ErrConcurrency):
			t.Fatalf("racing append: %v, want nil or ErrConcurrency", err)
		}
	}
	envs, err := l.Load(ctx, "server", "s", 0)
	if won != 1 || err != nil || len(envs) != 2 {
		t.Fatalf("%d of %d racing appends landed; the aggregate has %d commits (%v); want 1 and 2", won, writers, len(envs), err)
	}
}

// The retry trap: an append landed but its caller did not learn it, and
// retries. That must be reported as landed, not as a conflict, and not land twice.
func retryOfALandedCommitIsADuplicate(t *testing.T, l eventlog.Log) {
	ctx := ctxT(t)
	env := Envelope(t, "server", "s1", 1, "cmd-1")
	seq1 := MustAppend(t, l, env, 0)
	// The expected sequence a retry would send.
	if seq, dup, err := l.Append(ctx, env, 0); err != nil || !dup || seq != seq1 {
		t.Fatalf("retry = seq %d dup %v err %v; want seq %d dup true", seq, dup, err, seq1)
	}
	// Even a retry whose expected sequence is the current one must not land twice.
	if seq, dup, err := l.Append(ctx, env, seq1); err != nil || !dup || seq != seq1 {
		t.Fatalf("retry at current seq = seq %d dup %v err %v; want seq %d dup true", seq, dup, err, seq1)
	}
	// Someone else's command with the stale sequence is a conflict.
	if _, _, err := l.Append(ctx, Envelope(t, "server", "s1", 1, "cmd-other"), 0); !errors.Is(err, eventlog.ErrConcurrency) {
		t.Fatalf("other command with stale sequence: err = %v, want ErrConcurrency", err)
	}
	seq2 := MustAppend(t, l, Envelope(t, "server", "s1", 2, "cmd-2"), seq1)
	if head, err := l.LastSequence(ctx); err != nil || head != seq2 {
		t.Fatalf("LastSequence = %d, %v; want %d", head, err, seq2)
	}
}

func appendWithACancelledContextWritesNothing(t *testing.T, l eventlog.Log) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := l.Append(ctx, Envelope(t, "flavor", "x", 1, "c"), 0); err == nil {
		t.Fatal("append with a cancelled context succeeded")
	}
	if head, err := l.LastSequence(ctxT(t)); err != nil || head != 0 {
		t.Fatalf("LastSequence = %d, %v; want 0", head, err)
	}
}

func loadReturnsOneAggregateInOrder(t *testing.T, l eventlog.Log) {
	ctx := ctxT(t)
	ids := []string{"a", "b", "c"}
	seqs := map[string][]uint64{}
	for v := uint64(1); v <= 6; v++ {
		for _, id := range ids {
			var expected uint64
			if s := seqs[id]; len(s) > 0 {
				expected = s[len(s)-1]
			}
			seqs[id] = append(seqs[id], MustAppend(t, l, Envelope(t, "server", id, v, fmt.Sprintf("%s-%d", id, v)), expected))
		}
	}
	// A different aggregate type with the same id must not mix in.
	MustAppend(t, l, Envelope(t, "operation", "a", 1, "op-a-1"), 0)

	for _, id := range ids {
		envs, err := l.Load(ctx, "server", id, 0)
		if err != nil || len(envs) != 6 {
			t.Fatalf("Load(%s) = %d commits, %v; want 6", id, len(envs), err)
		}
		for i, env := range envs {
			sameCommit(t, env, Envelope(t, "server", id, uint64(i+1), fmt.Sprintf("%s-%d", id, i+1)), seqs[id][i])
		}
		later, err := l.Load(ctx, "server", id, seqs[id][3])
		if err != nil || len(later) != 2 || later[0].Sequence != seqs[id][4] {
			t.Fatalf("Load(%s, after=%d) = %v, %v; want the 2 after it", id, seqs[id][3], seqOf(later), err)
		}
		// after a sequence that is not this aggregate's
		mid, err := l.Load(ctx, "server", id, seqs[id][1]+1)
		if err != nil || len(mid) != 4 || mid[0].Sequence != seqs[id][2] {
			t.Fatalf("Load(%s, after=%d) = %v, %v; want 4 commits from %d", id, seqs[id][1]+1, seqOf(mid), err, seqs[id][2])
		}
		if none, err := l.Load(ctx, "server", id, seqs[id][5]); err != nil || len(none) != 0 {
			t.Fatalf("Load after the last commit = %d commits, %v; want none", len(none), err)
		}
	}
	if op, err := l.Load(ctx, "operation", "a", 0); err != nil || len(op) != 1 || op[0].CommandID != "op-a-1" {
		t.Fatalf("Load(operation/a) = %v, %v", seqOf(op), err)
	}
	if none, err := l.Load(ctx, "server", "missing", 0); err != nil || len(none) != 0 {
		t.Fatalf("Load of an aggregate without commits = %d, %v; want none, nil", len(none), err)
	}
}
