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
	if env.AggregateType != "server" {
		r.problems = append(r.problems, fmt.Sprintf("seq %d of type %s delivered", env.Sequence, env.AggregateType))
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

// history appends rounds of commits: one more per server, and one per
// operation of the same ids (which server subscriptions must not see).
type history struct {
	l        eventlog.Log
	ids      []string
	last     map[string]uint64
	ver      map[string]uint64
	servers  int
	opsLast  map[string]uint64
	opsCount int
}

func newHistory(l eventlog.Log, ids ...string) *history {
	return &history{l: l, ids: ids, last: map[string]uint64{}, ver: map[string]uint64{}, opsLast: map[string]uint64{}}
}

func (h *history) rounds(t *testing.T, n int) {
	t.Helper()
	for range n {
		for _, id := range h.ids {
			h.ver[id]++
			h.last[id] = MustAppend(t, h.l, Envelope(t, "server", id, h.ver[id], fmt.Sprintf("%s-%d", id, h.ver[id])), h.last[id])
			h.servers++
		}
		id := h.ids[0]
		h.opsCount++
		h.opsLast[id] = MustAppend(t, h.l, Envelope(t, "operation", id, uint64(h.opsCount), fmt.Sprint("op-", h.opsCount)), h.opsLast[id])
	}
}

// subscribe runs sub until the returned stop function is called.
func subscribe(t *testing.T, l eventlog.Log, sub eventlog.Subscription) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Subscribe(ctx, sub) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("subscription %s: %v", sub.Name, err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("subscription %s did not stop", sub.Name)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func servers(name string, workers int, handle func(context.Context, domain.Envelope) error) eventlog.Subscription {
	return eventlog.Subscription{Name: name, AggregateTypes: []string{"server"}, Workers: workers, Handle: handle}
}

func subscriptionDeliversOnceInKeyOrderAndResumes(t *testing.T, l eventlog.Log) {
	h := newHistory(l, "s1", "s2", "s3", "s4", "s5", "s6")
	h.rounds(t, 8)
	rec := newRecorder()
	sub := servers("test-order-v1", 4, rec.handle)
	stop := subscribe(t, l, sub)
	h.rounds(t, 4) // more while it runs
	eventually(t, 15*time.Second, "every server commit handled", func() bool { return rec.count() == h.servers })
	time.Sleep(100 * time.Millisecond) // room for the acknowledgements to land
	stop()
	rec.check(t, h.servers)

	// Commits appended while the subscriber is down are delivered when it
	// comes back under the same name, and nothing handled is handled again.
	h.rounds(t, 3)
	subscribe(t, l, sub)
	eventually(t, 15*time.Second, "commits appended while stopped handled", func() bool { return rec.count() == h.servers })
	time.Sleep(300 * time.Millisecond) // room for a wrong redelivery to show up
	rec.check(t, h.servers)
}

// A commit whose handler failed is handled again, before the later commits
// of its key (the recorder checks versions arrive in order).
func subscriptionRetriesAFailedCommitBeforeLaterOnes(t *testing.T, l eventlog.Log) {
	h := newHistory(l, "a", "b")
	h.rounds(t, 3)
	rec := newRecorder()
	envs, err := l.Load(ctxT(t), "server", "b", 0)
	if err != nil || len(envs) != 3 {
		t.Fatalf("Load(b) = %d, %v", len(envs), err)
	}
	failing := envs[0].Sequence // b's first commit
	rec.failOnce[failing] = true
	subscribe(t, l, servers("test-retry-v1", 2, rec.handle))
	eventually(t, 10*time.Second, "every commit handled", func() bool { return rec.count() == h.servers })
	rec.check(t, h.servers)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.attempts[failing] != 2 {
		t.Fatalf("failed commit delivered %d times, want 2", rec.attempts[failing])
	}
}

// Each name keeps its own position: a new name starts at the beginning,
// and the subscriptions of all types see every type.
func subscriptionsByNameAreIndependent(t *testing.T, l eventlog.Log) {
	h := newHistory(l, "x", "y")
	h.rounds(t, 3)
	first, second := newRecorder(), newRecorder()
	subscribe(t, l, servers("test-first-v1", 1, first.handle))
	eventually(t, 10*time.Second, "the first name handles every commit", func() bool { return first.count() == h.servers })
	subscribe(t, l, servers("test-second-v1", 3, second.handle))
	eventually(t, 10*time.Second, "the second name handles every commit", func() bool { return second.count() == h.servers })

	var mu sync.Mutex
	types := map[string]int{}
	subscribe(t, l, eventlog.Subscription{Name: "test-all-v1", Handle: func(_ context.Context, env domain.Envelope) error {
		mu.Lock()
		defer mu.Unlock()
		types[env.AggregateType]++
		return nil
	}})
	eventually(t, 10*time.Second, "a subscription without types handles every commit", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return types["server"] == h.servers && types["operation"] == h.opsCount
	})
	first.check(t, h.servers)
	second.check(t, h.servers)
}

// Two subscribers under one name at once (two replicas): together they
// handle each commit once.
func subscribersOfOneNameShareTheCommits(t *testing.T, l eventlog.Log) {
	h := newHistory(l, "p", "q", "r")
	h.rounds(t, 4)
	var mu sync.Mutex
	handled := map[uint64]int{}
	handle := func(_ context.Context, env domain.Envelope) error {
		mu.Lock()
		defer mu.Unlock()
		handled[env.Sequence]++
		return nil
	}
	subscribe(t, l, servers("test-shared-v1", 2, handle))
	subscribe(t, l, servers("test-shared-v1", 2, handle))
	h.rounds(t, 4)
	eventually(t, 15*time.Second, "every commit handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled) == h.servers
	})
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	for seq, n := range handled {
		if n != 1 {
			t.Errorf("seq %d handled %d times by the two subscribers", seq, n)
		}
	}
}

func subscriptionWithoutANameIsRefused(t *testing.T, l eventlog.Log) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := l.Subscribe(ctx, eventlog.Subscription{Handle: func(context.Context, domain.Envelope) error { return nil }})
	if err == nil {
		t.Fatal("a subscription without a name ran; it would have no durable position")
	}
}
