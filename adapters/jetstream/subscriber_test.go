package jetstream_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	keeljs "github.com/keel-cloud/keel/adapters/jetstream"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/eventlog"
	"github.com/keel-cloud/keel/eventlog/eventlogtest"
)

// The JetStream event log passes the eventlog contract suite.
func TestContract(t *testing.T) {
	eventlogtest.Run(t, func(t *testing.T) eventlog.Log {
		_, s := openStore(t, 0)
		return s
	})
}

// A subscription is a durable consumer named as the subscription: existing
// deployments keep their positions (saga-servers-v1). One aggregate type is
// its filter; several share the whole log as filter (a consumer of several
// subjects costs the server a walk of every subject per lookup) and the
// subscriber hands over only their commits.
func TestSubscriptionIsADurableConsumerOfItsName(t *testing.T) {
	_, s := openStore(t, 0)
	var mu sync.Mutex
	var seen []string
	sub := eventlog.Subscription{Name: "saga-servers-v1", AggregateTypes: []string{"server", "operation"}, Workers: 2,
		Handle: func(_ context.Context, env domain.Envelope) error {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, env.AggregateType+"/"+env.AggregateID)
			return nil
		}}
	for _, e := range []struct{ typ, id string }{{"host", "h1"}, {"server", "s1"}, {"flavor", "f1"}, {"operation", "o1"}, {"serverx", "x1"}} {
		mustAppend(t, s, envelope(t, e.typ, e.id, 1, "c-"+e.id), 0)
	}
	runSub(t, s, sub)
	ctx := ctxT(t)
	var info *jetstream.ConsumerInfo
	eventually(t, 10*time.Second, "the consumer exists", func() bool {
		c, err := s.Stream().Consumer(ctx, sub.Name)
		if err != nil {
			return false
		}
		info, err = c.Info(ctx)
		return err == nil
	})
	eventually(t, 10*time.Second, "the server and operation commits are handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) >= 2
	})
	c := info.Config
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	slices.Sort(seen)
	if !slices.Equal(seen, []string{"operation/o1", "server/s1"}) {
		t.Errorf("handled %v, want only server/s1 and operation/o1", seen)
	}
	mu.Unlock()
	if c.Durable != "saga-servers-v1" || !slices.Equal(c.FilterSubjects, []string{"keel.events.>"}) ||
		c.AckPolicy != jetstream.AckExplicitPolicy || c.DeliverPolicy != jetstream.DeliverAllPolicy || c.AckWait != keeljs.AckWait ||
		c.MaxDeliver != -1 || c.MaxAckPending != 8192 {
		t.Fatalf("consumer config %+v", c)
	}
}

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
func runSub(t *testing.T, s *keeljs.Store, sub eventlog.Subscription) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Subscribe(ctx, sub) }()
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

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestSubscriptionDeliversOnceInKeyOrderAndResumes(t *testing.T) {
	_, s := openStore(t, 0)
	ids := []string{"s1", "s2", "s3", "s4", "s5", "s6"}
	last, ver := map[string]uint64{}, map[string]uint64{}
	for i := 0; i < 10; i++ {
		appendRound(t, s, ids, last, ver)
	}
	rec := newRecorder()
	sub := eventlog.Subscription{Name: "test-order-v1", AggregateTypes: []string{"server"}, Workers: 4,
		Handle: rec.handle, Log: quietLog()}
	stop := runSub(t, s, sub)
	// More commits while it runs.
	for i := 0; i < 5; i++ {
		appendRound(t, s, ids, last, ver)
	}
	total := 15 * len(ids)
	eventually(t, 15*time.Second, "every commit handled", func() bool { return rec.count() == total })
	ctx := ctxT(t)
	cons, err := s.Stream().Consumer(ctx, sub.Name)
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
