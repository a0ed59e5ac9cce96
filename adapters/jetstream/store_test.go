package jetstream_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	keeljs "github.com/keel-cloud/keel/adapters/jetstream"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/eventlog"
)

func TestAppendOptimisticConcurrency(t *testing.T) {
	_, s := openStore(t, 0)
	ctx := ctxT(t)

	seq1 := mustAppend(t, s, envelope(t, "flavor", "a", 1, "c1"), 0)
	if seq1 != 1 {
		t.Fatalf("first append landed at %d, want 1", seq1)
	}
	seq2 := mustAppend(t, s, envelope(t, "flavor", "a", 2, "c2"), seq1)

	// A writer that read the aggregate at seq1 is too late now.
	_, dup, err := s.Append(ctx, envelope(t, "flavor", "a", 2, "c3"), seq1)
	if !errors.Is(err, eventlog.ErrConcurrency) {
		t.Fatalf("stale append: err = %v (dup %v), want ErrConcurrency", err, dup)
	}
	// Creating an aggregate that already exists (expected 0) is a conflict too.
	_, _, err = s.Append(ctx, envelope(t, "flavor", "a", 1, "c4"), 0)
	if !errors.Is(err, eventlog.ErrConcurrency) {
		t.Fatalf("append with expected 0 to an existing subject: err = %v, want ErrConcurrency", err)
	}
	// Another aggregate is independent: expected 0 lands, even though the
	// stream itself is at seq2.
	if seq := mustAppend(t, s, envelope(t, "flavor", "b", 1, "c5"), 0); seq != seq2+1 {
		t.Fatalf("append to a new subject landed at %d, want %d", seq, seq2+1)
	}
	if n := streamMsgs(t, s); n != 3 {
		t.Fatalf("stream holds %d commits, want 3 (refused appends must not land)", n)
	}
	if last, err := s.LastSequence(ctx); err != nil || last != 3 {
		t.Fatalf("LastSequence = %d, %v; want 3", last, err)
	}

	info, err := s.Stream().Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := info.Config
	if !c.DenyDelete || !c.DenyPurge || !c.AllowDirect || c.Storage != jetstream.FileStorage ||
		!slices.Equal(c.Subjects, []string{"keel.events.>"}) || c.Name != keeljs.StreamName {
		t.Fatalf("stream config: deny delete %v, deny purge %v, allow direct %v, storage %v, subjects %v, name %s",
			c.DenyDelete, c.DenyPurge, c.AllowDirect, c.Storage, c.Subjects, c.Name)
	}
	if c.Duplicates != keeljs.DefaultDuplicateWindow {
		t.Fatalf("duplicate window %s, want %s", c.Duplicates, keeljs.DefaultDuplicateWindow)
	}
	// The log cannot be erased.
	if err := s.Stream().DeleteMsg(ctx, 1); err == nil {
		t.Fatal("deleting a commit succeeded; the stream must deny deletes")
	}
	if err := s.Stream().Purge(ctx); err == nil {
		t.Fatal("purging the stream succeeded; the stream must deny purges")
	}
	if n := streamMsgs(t, s); n != 3 {
		t.Fatalf("stream holds %d commits after refused delete/purge, want 3", n)
	}
}

// The retry trap: an append landed but its caller did not learn it, and
// retries with the expected sequence it had before. That must be reported
// as landed (same sequence, duplicate), not as a conflict, and not land twice.
func TestAppendRetryOfLandedCommitIsNotAConflict(t *testing.T) {
	t.Run("landed without a message id (last-commit check)", func(t *testing.T) {
		_, s := openStore(t, 0)
		ctx := ctxT(t)
		env := envelope(t, "server", "s1", 1, "cmd-1")
		// The first attempt lands without a Nats-Msg-Id, so only the
		// last-commit check can recognise the retry.
		data := mustJSON(env)
		ack, err := s.JS.Publish(ctx, keeljs.Subject("server", "s1"), []byte(data))
		if err != nil {
			t.Fatal(err)
		}
		seq, dup, err := s.Append(ctx, env, 0)
		if err != nil || !dup || seq != ack.Sequence {
			t.Fatalf("retry = seq %d dup %v err %v; want seq %d dup true", seq, dup, err, ack.Sequence)
		}
		// Someone else's commit with the same expected sequence is a conflict.
		if _, _, err := s.Append(ctx, envelope(t, "server", "s1", 1, "cmd-other"), 0); !errors.Is(err, eventlog.ErrConcurrency) {
			t.Fatalf("other command with stale sequence: err = %v, want ErrConcurrency", err)
		}
		if n := streamMsgs(t, s); n != 1 {
			t.Fatalf("stream holds %d commits, want 1", n)
		}
	})

	t.Run("within the duplicate window", func(t *testing.T) {
		_, s := openStore(t, 0)
		ctx := ctxT(t)
		env := envelope(t, "server", "s1", 1, "cmd-1")
		seq1 := mustAppend(t, s, env, 0)
		// The same expected sequence, as a retry would send it.
		seq, dup, err := s.Append(ctx, env, 0)
		if err != nil || !dup || seq != seq1 {
			t.Fatalf("retry = seq %d dup %v err %v; want seq %d dup true", seq, dup, err, seq1)
		}
		// Even a retry whose expected sequence happens to be the current one
		// must not land twice while the window remembers the command id.
		seq, dup, err = s.Append(ctx, env, seq1)
		if err != nil || !dup || seq != seq1 {
			t.Fatalf("retry at current seq = seq %d dup %v err %v; want seq %d dup true", seq, dup, err, seq1)
		}
		// A different command still lands.
		mustAppend(t, s, envelope(t, "server", "s1", 2, "cmd-2"), seq1)
		if n := streamMsgs(t, s); n != 2 {
			t.Fatalf("stream holds %d commits, want 2", n)
		}
	})

	t.Run("after the duplicate window", func(t *testing.T) {
		_, s := openStore(t, time.Second)
		ctx := ctxT(t)
		info, err := s.Stream().Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.Duplicates != time.Second {
			t.Fatalf("duplicate window %s, want 1s", info.Config.Duplicates)
		}
		env := envelope(t, "server", "s1", 1, "cmd-1")
		seq1 := mustAppend(t, s, env, 0)
		time.Sleep(1600 * time.Millisecond) // JetStream has forgotten cmd-1
		seq, dup, err := s.Append(ctx, env, 0)
		if err != nil || !dup || seq != seq1 {
			t.Fatalf("retry after window = seq %d dup %v err %v; want seq %d dup true", seq, dup, err, seq1)
		}
		if n := streamMsgs(t, s); n != 1 {
			t.Fatalf("stream holds %d commits, want 1", n)
		}
		// Proof that the window had really forgotten cmd-1: the same
		// Nats-Msg-Id now lands elsewhere.
		ack, err := s.JS.Publish(ctx, keeljs.Subject("server", "other"), []byte(mustJSON(envelope(t, "server", "other", 1, "cmd-1"))),
			jetstream.WithMsgID("cmd-1"))
		if err != nil || ack.Duplicate {
			t.Fatalf("publish with the old msg id after the window: %+v, %v; want a new message", ack, err)
		}
	})
}

func TestLoadReturnsOneAggregateInOrderWithoutConsumers(t *testing.T) {
	_, s := openStore(t, 0)
	ctx := ctxT(t)
	ids := []string{"a", "b", "c"}
	seqs := map[string][]uint64{}
	for v := uint64(1); v <= 10; v++ {
		for _, id := range ids {
			var expected uint64
			if l := seqs[id]; len(l) > 0 {
				expected = l[len(l)-1]
			}
			seqs[id] = append(seqs[id], mustAppend(t, s, envelope(t, "server", id, v, fmt.Sprintf("%s-%d", id, v)), expected))
		}
	}
	// A different aggregate type with the same id must not mix in.
	mustAppend(t, s, envelope(t, "operation", "a", 1, "op-a-1"), 0)

	consumers := func() int {
		t.Helper()
		info, err := s.Stream().Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ai, err := s.JS.AccountInfo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Consumers + ai.Consumers
	}
	if n := consumers(); n != 0 {
		t.Fatalf("%d consumers before loading", n)
	}

	for _, id := range ids {
		envs, err := s.Load(ctx, "server", id, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(envs) != 10 {
			t.Fatalf("Load(%s) returned %d commits, want 10", id, len(envs))
		}
		for i, env := range envs {
			if env.AggregateType != "server" || env.AggregateID != id || env.Version != uint64(i+1) ||
				env.Sequence != seqs[id][i] || env.CommandID != fmt.Sprintf("%s-%d", id, i+1) || len(env.Events) != 1 {
				t.Fatalf("Load(%s)[%d] = %s/%s v%d seq %d cmd %s; want v%d seq %d", id, i,
					env.AggregateType, env.AggregateID, env.Version, env.Sequence, env.CommandID, i+1, seqs[id][i])
			}
		}
		// Only the commits after a position.
		after := seqs[id][5]
		later, err := s.Load(ctx, "server", id, after)
		if err != nil {
			t.Fatal(err)
		}
		if len(later) != 4 || later[0].Sequence != seqs[id][6] || later[3].Sequence != seqs[id][9] {
			t.Fatalf("Load(%s, after=%d) = %d commits starting %v; want the 4 after it", id, after, len(later), seqOf(later))
		}
		// after a sequence that is not this aggregate's (another's commit in between)
		mid, err := s.Load(ctx, "server", id, seqs[id][2]+1)
		if err != nil || len(mid) != 7 || mid[0].Sequence != seqs[id][3] {
			t.Fatalf("Load(%s, after=%d) = %v, %v; want 7 commits from %d", id, seqs[id][2]+1, seqOf(mid), err, seqs[id][3])
		}
		if none, err := s.Load(ctx, "server", id, seqs[id][9]); err != nil || len(none) != 0 {
			t.Fatalf("Load after the last commit = %d commits, %v; want none", len(none), err)
		}
	}
	if op, err := s.Load(ctx, "operation", "a", 0); err != nil || len(op) != 1 || op[0].CommandID != "op-a-1" {
		t.Fatalf("Load(operation/a) = %v, %v", seqOf(op), err)
	}
	if none, err := s.Load(ctx, "server", "missing", 0); err != nil || len(none) != 0 {
		t.Fatalf("Load of an aggregate without commits = %d, %v; want none, nil", len(none), err)
	}
	for i := 0; i < 100; i++ {
		if _, err := s.Load(ctx, "server", ids[i%3], uint64(i%20)); err != nil {
			t.Fatal(err)
		}
	}
	if n := consumers(); n != 0 {
		t.Fatalf("%d consumers after 100 loads; Load must use direct gets only", n)
	}
	env, err := s.Get(ctx, seqs["b"][4])
	if err != nil || env.AggregateID != "b" || env.Version != 5 || env.Sequence != seqs["b"][4] {
		t.Fatalf("Get(%d) = %+v, %v", seqs["b"][4], env, err)
	}
}

func TestCommitsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	e := startServer(t, dir)
	s, err := keeljs.Open(ctxT(t), e.Conn, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	for v := uint64(1); v <= 5; v++ {
		last = mustAppend(t, s, envelope(t, "flavor", "f", v, fmt.Sprint("c", v)), last)
	}
	e.Close()

	e2 := startServer(t, dir)
	s2, err := keeljs.Open(ctxT(t), e2.Conn, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	envs, err := s2.Load(ctx, "flavor", "f", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(envs) != 5 || envs[4].Sequence != last || envs[4].Version != 5 {
		t.Fatalf("after restart Load = %v; want 5 commits ending at %d", seqOf(envs), last)
	}
	if head, err := s2.LastSequence(ctx); err != nil || head != last {
		t.Fatalf("after restart LastSequence = %d, %v; want %d", head, err, last)
	}
	// Concurrency control still holds, and the log continues where it was.
	if _, _, err := s2.Append(ctx, envelope(t, "flavor", "f", 5, "late"), last-1); !errors.Is(err, eventlog.ErrConcurrency) {
		t.Fatalf("stale append after restart: %v, want ErrConcurrency", err)
	}
	// A retry of the last command is still recognised.
	if seq, dup, err := s2.Append(ctx, envelope(t, "flavor", "f", 5, "c5"), last-1); err != nil || !dup || seq != last {
		t.Fatalf("retry after restart = %d %v %v; want %d duplicate", seq, dup, err, last)
	}
	if seq := mustAppend(t, s2, envelope(t, "flavor", "f", 6, "c6"), last); seq != last+1 {
		t.Fatalf("append after restart landed at %d, want %d", seq, last+1)
	}
}

func TestAppendWithCancelledContextWritesNothing(t *testing.T) {
	_, s := openStore(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.Append(ctx, envelope(t, "flavor", "x", 1, "c"), 0); err == nil {
		t.Fatal("append with a cancelled context succeeded")
	}
	if n := streamMsgs(t, s); n != 0 {
		t.Fatalf("stream holds %d commits, want 0", n)
	}
}

func seqOf(envs []domain.Envelope) []uint64 {
	out := make([]uint64, len(envs))
	for i, e := range envs {
		out[i] = e.Sequence
	}
	return out
}
