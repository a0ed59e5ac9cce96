package jetstream_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	keeljs "github.com/keel-cloud/keel/adapters/jetstream"
	"github.com/keel-cloud/keel/domain"
)

// recorder remembers every delivery a subscription handled.
type recorder struct {
	mu       sync.Mutex
	handled  map[uint64]int    // seq -> times handled successfully
	attempts map[uint64]int    // seq -> times delivered
	lastVer  map[string]uint64 // aggregate -> last version handled
	problems []string
	failOnce map[uint64]bool // seqs whose first delivery fails
}

func newRecorder() *recorder {
	return &recorder{handled: map[uint64]int{}, attempts: map[uint64]int{}, lastVer: map[string]uint64{}, failOnce: map[uint64]bool{}}
}

func (r *recorder) handle(_ context.Context, env domain.Envelope) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts[env.Sequence]++
	if r.failOnce[env.Sequence] && r.attempts[env.Sequence] == 1 {
		return errors.New("injected failure")
	}
	if r.handled[env.Sequence] > 0 {
		r.problems = append(r.problems, fmt.Sprintf("seq %d handled again", env.Sequence))
	}
	r.handled[env.Sequence]++
	if want := r.lastVer[env.AggregateID] + 1; env.Version != want {
		r.problems = append(r.problems, fmt.Sprintf("%s: got v%d (seq %d), want v%d", env.AggregateID, env.Version, env.Sequence, want))
	}
	r.lastVer[env.AggregateID] = env.Version
	return nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.handled)
}

func (r *recorder) check(t *testing.T, want int) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.problems) > 0 {
		t.Fatalf("delivery problems: %v", r.problems)
	}
	if len(r.handled) != want {
		t.Fatalf("handled %d commits, want %d", len(r.handled), want)
	}
}

// appendRound appends one more commit to each aggregate.
func appendRound(t *testing.T, s *keeljs.Store, ids []string, last map[string]uint64, ver map[string]uint64) {
	t.Helper()
	for _, id := range ids {
		ver[id]++
		last[id] = mustAppend(t, s, envelope(t, "server", id, ver[id], fmt.Sprintf("%s-%d", id, ver[id])), last[id])
	}
}

// runSub runs a subscription until the returned stop function is called.
func runSub(t *testing.T, s *keeljs.Store, sub keeljs.Subscription) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sub.Run(ctx, s.Stream()) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("subscription %s: %v", sub.Durable, err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("subscription %s did not stop", sub.Durable)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestSubscriptionDeliversOnceInKeyOrderAndResumes(t *testing.T) {
	_, s := openStore(t, 0)
	ids := []string{"s1", "s2", "s3", "s4", "s5", "s6"}
	last, ver := map[string]uint64{}, map[string]uint64{}
	for i := 0; i < 10; i++ {
		appendRound(t, s, ids, last, ver)
	}
	rec := newRecorder()
	sub := keeljs.Subscription{Durable: "test-order-v1", Subjects: []string{"keel.events.server.>"}, Workers: 4,
		Handle: rec.handle, Log: quietLog()}
	stop := runSub(t, s, sub)
	// More commits while it runs.
	for i := 0; i < 5; i++ {
		appendRound(t, s, ids, last, ver)
	}
	total := 15 * len(ids)
	eventually(t, 15*time.Second, "every commit handled", func() bool { return rec.count() == total })
	ctx := ctxT(t)
	cons, err := s.Stream().Consumer(ctx, sub.Durable)
	if err != nil {
		t.Fatal(err)
	}
	// Acks are asynchronous: wait until JetStream has them all.
	eventually(t, 10*time.Second, "all acks recorded", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending == 0 && info.AckFloor.Stream == last[ids[len(ids)-1]]
	})
	stop()
	rec.check(t, total)

	// Commits appended while the subscriber is down are delivered after it
	// comes back, and nothing acknowledged is handled again.
	for i := 0; i < 3; i++ {
		appendRound(t, s, ids, last, ver)
	}
	runSub(t, s, sub)
	total += 3 * len(ids)
	eventually(t, 15*time.Second, "commits appended while stopped handled", func() bool { return rec.count() == total })
	time.Sleep(300 * time.Millisecond) // room for a wrong redelivery to show up
	rec.check(t, total)
}

func TestSubscriptionRedeliversAfterHandlerError(t *testing.T) {
	_, s := openStore(t, 0)
	ids := []string{"a", "b"}
	last, ver := map[string]uint64{}, map[string]uint64{}
	for i := 0; i < 3; i++ {
		appendRound(t, s, ids, last, ver)
	}
	rec := newRecorder()
	// The first commit of b fails once; it must come back and be handled.
	failing := uint64(2)
	rec.failOnce[failing] = true
	sub := keeljs.Subscription{Durable: "test-retry-v1", Subjects: []string{"keel.events.>"}, Workers: 1,
		Handle: rec.handle, Log: quietLog()}
	runSub(t, s, sub)
	eventually(t, 10*time.Second, "the failed commit handled after redelivery", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return rec.handled[failing] == 1
	})
	eventually(t, 5*time.Second, "all commits handled", func() bool { return rec.count() == 6 })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.attempts[failing] != 2 {
		t.Fatalf("failed commit delivered %d times, want 2", rec.attempts[failing])
	}
	for seq, n := range rec.handled {
		if n != 1 {
			t.Fatalf("seq %d handled %d times", seq, n)
		}
	}
}

// Subscription documents that commits with the same key are handled in
// stream order. A commit whose handler failed must therefore be handled
// again before the later commits of its key, not after them.
func TestSubscriptionKeepsKeyOrderAcrossARetry(t *testing.T) {
	_, s := openStore(t, 0)
	ids := []string{"a", "b"}
	last, ver := map[string]uint64{}, map[string]uint64{}
	for i := 0; i < 3; i++ {
		appendRound(t, s, ids, last, ver)
	}
	rec := newRecorder()
	rec.failOnce[2] = true // b v1
	sub := keeljs.Subscription{Durable: "test-order-retry-v1", Subjects: []string{"keel.events.>"}, Workers: 2,
		Handle: rec.handle, Log: quietLog()}
	runSub(t, s, sub)
	eventually(t, 10*time.Second, "all commits handled", func() bool { return rec.count() == 6 })
	rec.check(t, 6)
}
