package memlog_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/eventlog"
	"github.com/keel-cloud/keel/eventlog/eventlogtest"
	"github.com/keel-cloud/keel/eventlog/memlog"
)

// reaction fails on the commit at one sequence while broken, and counts
// the attempts at every sequence.
type reaction struct {
	mu        sync.Mutex
	broken    uint64 // sequence of the commit that fails (0: none)
	failTimes int    // when > 0, fail only the first failTimes attempts
	attempts  map[uint64]int
	handled   map[uint64]bool
}

func (r *reaction) handle(_ context.Context, env domain.Envelope) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts[env.Sequence]++
	if env.Sequence == r.broken && (r.failTimes == 0 || r.attempts[env.Sequence] <= r.failTimes) {
		return fmt.Errorf("host refused, attempt %d", r.attempts[env.Sequence])
	}
	r.handled[env.Sequence] = true
	return nil
}

func (r *reaction) state(seq uint64) (attempts int, handled bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts[seq], r.handled[seq]
}

func (r *reaction) fix() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.broken = 0
}

// parkingRig is a subscription behind Parking on the in-memory log, with
// one commit of the broken server s1 (seq 1) and a later one (seq 2).
type parkingRig struct {
	log *memlog.Log
	lot *memlog.Lot
	r   *reaction
}

func startParking(t *testing.T, maxAttempts int, after time.Duration, failTimes int) *parkingRig {
	t.Helper()
	rig := &parkingRig{log: memlog.New(), lot: &memlog.Lot{},
		r: &reaction{broken: 1, failTimes: failTimes, attempts: map[uint64]int{}, handled: map[uint64]bool{}}}
	eventlogtest.MustAppend(t, rig.log, eventlogtest.Envelope(t, "server", "s1", 1, "c1"), 0)
	eventlogtest.MustAppend(t, rig.log, eventlogtest.Envelope(t, "server", "s1", 2, "c2"), 1)
	p := &eventlog.Parking{Subscriber: rig.log, Lot: rig.lot, Commits: rig.log,
		MaxAttempts: maxAttempts, After: after, Poll: 10 * time.Millisecond}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- p.Subscribe(ctx, eventlog.Subscription{Name: "saga-test-v1", Handle: rig.r.handle})
	}()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return rig
}

func (rig *parkingRig) parked(t *testing.T, seq uint64) (eventlog.ParkedCommit, bool) {
	t.Helper()
	pc, err := rig.lot.Get(context.Background(), "saga-test-v1", seq)
	if errors.Is(err, eventlog.ErrNotParked) {
		return pc, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return pc, true
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCommitFailingNTimesIsParkedAndLaterCommitsOfItsKeyProceed(t *testing.T) {
	rig := startParking(t, 3, time.Nanosecond, 0)
	waitFor(t, "the later commit of s1", func() bool { _, ok := rig.r.state(2); return ok })
	pc, ok := rig.parked(t, 1)
	if !ok {
		t.Fatal("seq 1 was not parked")
	}
	if n, _ := rig.r.state(1); n != 3 || pc.Attempts != 3 {
		t.Fatalf("parked after %d attempts (record says %d), want 3", n, pc.Attempts)
	}
	if pc.State != eventlog.StateParked || pc.Reason != "host refused, attempt 3" || pc.AggregateID != "s1" ||
		pc.Key != "s1" || pc.AggregateType != "server" || pc.ParkedAt.Before(pc.FirstFailedAt) {
		t.Fatalf("parked record %+v", pc)
	}
}

func TestCommitSucceedingBeforeMaxAttemptsIsNotParked(t *testing.T) {
	rig := startParking(t, 3, time.Nanosecond, 2) // fails twice, handled on the third attempt
	waitFor(t, "the later commit of s1", func() bool { _, ok := rig.r.state(2); return ok })
	if n, handled := rig.r.state(1); n != 3 || !handled {
		t.Fatalf("seq 1: %d attempts, handled %v; want handled on attempt 3", n, handled)
	}
	if pc, ok := rig.parked(t, 1); ok {
		t.Fatalf("seq 1 parked: %+v", pc)
	}
}

// Parking waits for both bounds: many attempts within After are retried
// in place, and the later commits of the key wait.
func TestCommitIsNotParkedBeforeItFailedForAfter(t *testing.T) {
	rig := startParking(t, 1, time.Hour, 0)
	waitFor(t, "three attempts at seq 1", func() bool { n, _ := rig.r.state(1); return n >= 3 })
	if _, ok := rig.parked(t, 1); ok {
		t.Fatal("seq 1 parked before it had failed for an hour")
	}
	if n, _ := rig.r.state(2); n != 0 {
		t.Fatal("seq 2 was handled while seq 1 was still retried in place")
	}
}

func TestRetryOfAParkedCommitWhoseCauseIsGoneRemovesIt(t *testing.T) {
	rig := startParking(t, 2, time.Nanosecond, 0)
	waitFor(t, "seq 1 parked", func() bool { _, ok := rig.parked(t, 1); return ok })
	rig.r.fix()
	if err := rig.lot.Retry(context.Background(), "saga-test-v1", 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the retried commit handled", func() bool { _, ok := rig.r.state(1); return ok })
	waitFor(t, "the record removed", func() bool { _, ok := rig.parked(t, 1); return !ok })
}

func TestSkipOfAParkedCommitRemovesItWithoutRunningIt(t *testing.T) {
	rig := startParking(t, 2, time.Nanosecond, 0)
	waitFor(t, "seq 1 parked", func() bool { _, ok := rig.parked(t, 1); return ok })
	rig.r.fix()
	if err := rig.lot.Remove(context.Background(), "saga-test-v1", 1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // ten polls
	if n, handled := rig.r.state(1); n != 2 || handled {
		t.Fatalf("skipped seq 1 ran again: %d attempts, handled %v", n, handled)
	}
}

func TestFailingRetryParksAgainWithTheAttemptCounted(t *testing.T) {
	rig := startParking(t, 2, time.Nanosecond, 0)
	waitFor(t, "seq 1 parked", func() bool { _, ok := rig.parked(t, 1); return ok })
	if err := rig.lot.Retry(context.Background(), "saga-test-v1", 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "seq 1 parked again", func() bool {
		pc, ok := rig.parked(t, 1)
		return ok && pc.State == eventlog.StateParked && pc.Attempts == 3
	})
	pc, _ := rig.parked(t, 1)
	if !strings.Contains(pc.Reason, "attempt 3") {
		t.Fatalf("reason %q is not the retry's", pc.Reason)
	}
	if n, handled := rig.r.state(1); n != 3 || handled {
		t.Fatalf("seq 1: %d attempts, handled %v; want 3, not handled", n, handled)
	}
}
