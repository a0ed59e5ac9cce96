package eventlogtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/eventlog"
)

// fill appends n commits, one per aggregate, several writers at a time
// (one commit per aggregate keeps the expected sequence at 0).
func fill(t *testing.T, l eventlog.Log, prefix string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			id := fmt.Sprintf("%s-%d", prefix, i)
			if _, _, err := l.Append(ctxT(t), Envelope(t, "server", id, 1, id), 0); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// follow collects what Follow hands over from from to to.
func follow(t *testing.T, l eventlog.Log, from, to uint64) (seqs []uint64, batches int) {
	t.Helper()
	err := l.Follow(ctxT(t), from, to, func(batch []domain.Envelope) error {
		if len(batch) == 0 || len(batch) > eventlog.MaxBatch {
			return fmt.Errorf("batch of %d commits; want 1 to %d", len(batch), eventlog.MaxBatch)
		}
		batches++
		for _, env := range batch {
			if env.Sequence == 0 || env.AggregateType != "server" || len(env.Raw) == 0 {
				return fmt.Errorf("commit %+v read without its sequence, type or raw form", env)
			}
			seqs = append(seqs, env.Sequence)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Follow(%d, %d): %v", from, to, err)
	}
	return seqs, batches
}

// consecutive fails unless seqs is exactly from..to.
func consecutive(t *testing.T, seqs []uint64, from, to uint64) {
	t.Helper()
	if uint64(len(seqs)) != to-from+1 {
		t.Fatalf("handed over %d commits, want %d (%d to %d)", len(seqs), to-from+1, from, to)
	}
	for i, s := range seqs {
		if s != from+uint64(i) {
			t.Fatalf("commit %d handed over is seq %d, want %d", i, s, from+uint64(i))
		}
	}
}

func followHandsOverEveryCommitInBatches(t *testing.T, l eventlog.Log) {
	n := eventlog.MaxBatch + 150 // more than one batch
	fill(t, l, "f", n)
	head, err := l.LastSequence(ctxT(t))
	if err != nil || head != uint64(n) {
		t.Fatalf("LastSequence = %d, %v; want %d", head, err, n)
	}
	seqs, batches := follow(t, l, 0, head)
	consecutive(t, seqs, 1, head)
	if batches < 2 {
		t.Fatalf("%d commits in %d batch(es); batches hold at most %d", n, batches, eventlog.MaxBatch)
	}
	seqs, _ = follow(t, l, 40, 60)
	consecutive(t, seqs, 40, 60)
	seqs, _ = follow(t, l, head, head)
	consecutive(t, seqs, head, head)
	if seqs, _ := follow(t, l, head+1, head); len(seqs) != 0 {
		t.Fatalf("Follow from above to handed over %v", seqs)
	}
}

func followWaitsForNewCommits(t *testing.T, l eventlog.Log) {
	fill(t, l, "before", 5)
	ctx, cancel := context.WithCancel(ctxT(t))
	var mu sync.Mutex
	var seqs []uint64
	done := make(chan error, 1)
	go func() {
		done <- l.Follow(ctx, 3, 0, func(batch []domain.Envelope) error {
			mu.Lock()
			defer mu.Unlock()
			seqs = append(seqs, seqOf(batch)...)
			return nil
		})
	}()
	got := func() int { mu.Lock(); defer mu.Unlock(); return len(seqs) }
	eventually(t, 10*time.Second, "the commits already there", func() bool { return got() == 3 })
	fill(t, l, "after", 4)
	eventually(t, 10*time.Second, "the commits appended while following", func() bool { return got() == 7 })
	// A follower with an end waits for it too.
	toDone := make(chan []uint64, 1)
	go func() {
		var s []uint64
		_ = l.Follow(ctx, 8, 10, func(batch []domain.Envelope) error { s = append(s, seqOf(batch)...); return nil })
		toDone <- s
	}()
	time.Sleep(50 * time.Millisecond)
	fill(t, l, "late", 2)
	select {
	case s := <-toDone:
		consecutive(t, s, 8, 10)
	case <-time.After(10 * time.Second):
		t.Fatal("Follow to a sequence appended later did not return")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Follow ended by its context returned %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Follow did not return when its context ended")
	}
	mu.Lock()
	defer mu.Unlock()
	consecutive(t, seqs[:7], 3, 9)
}

func followStopsOnTheHandlersError(t *testing.T, l eventlog.Log) {
	fill(t, l, "e", 10)
	boom := errors.New("boom")
	calls := 0
	err := l.Follow(ctxT(t), 1, 0, func([]domain.Envelope) error { calls++; return boom })
	if !errors.Is(err, boom) || calls != 1 {
		t.Fatalf("Follow with a failing handler = %v after %d calls; want boom after 1", err, calls)
	}
}
