package lease_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keel-cloud/keel/lease"
	"github.com/keel-cloud/keel/lease/leasetest"
)

func TestMemoryStore(t *testing.T) { leasetest.RunStore(t, lease.NewMemory(500*time.Millisecond)) }

// campaigner runs lease.Run for one holder and records when it leads.
type campaigner struct {
	name   string
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	began  []time.Time
	ended  []time.Time
}

func campaign(s lease.Store, holder string, active *atomic.Int32, t *testing.T) *campaigner {
	return campaignIf(s, holder, nil, active, t)
}

func campaignIf(s lease.Store, holder string, eligible func() bool, active *atomic.Int32, t *testing.T) *campaigner {
	ctx, cancel := context.WithCancel(context.Background())
	c := &campaigner{name: holder, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		lease.Run(ctx, s, "ovn", holder, lease.Options{Eligible: eligible}, func(ctx context.Context) {
			if n := active.Add(1); n > 1 {
				t.Errorf("%d holders lead at once", n)
			}
			c.mu.Lock()
			c.began = append(c.began, time.Now())
			c.mu.Unlock()
			<-ctx.Done()
			active.Add(-1)
			c.mu.Lock()
			c.ended = append(c.ended, time.Now())
			c.mu.Unlock()
		})
	}()
	return c
}

func (c *campaigner) leads() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.began) > len(c.ended)
}

func (c *campaigner) stop() { c.cancel(); <-c.done }

func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// One of two leads; when it stops, it releases the lease and the other
// takes over within a poll, not a TTL.
func TestOneLeadsAndTheOtherTakesOverWhenItStops(t *testing.T) {
	s := lease.NewMemory(time.Second)
	var active atomic.Int32
	a := campaign(s, "a", &active, t)
	waitFor(t, "a leads", time.Second, a.leads)
	b := campaign(s, "b", &active, t)
	defer b.stop()
	time.Sleep(1500 * time.Millisecond) // past a TTL: a renews, b stays out
	if b.leads() || !a.leads() {
		t.Fatalf("a leads %v, b leads %v; want a only", a.leads(), b.leads())
	}
	stopped := time.Now()
	a.stop()
	waitFor(t, "b takes over", 500*time.Millisecond, b.leads)
	t.Logf("b took over %v after a stopped", time.Since(stopped).Round(time.Millisecond))
}

// A holder cut off from the store stops leading before its hold can have
// expired, and so before the other takes over.
func TestCutOffHolderStopsBeforeTheOtherLeads(t *testing.T) {
	s := lease.NewMemory(time.Second)
	var active atomic.Int32
	a := campaign(s, "a", &active, t)
	defer a.stop()
	waitFor(t, "a leads", time.Second, a.leads)
	b := campaign(s, "b", &active, t)
	defer b.stop()
	s.Fail("a", errors.New("partitioned"))
	waitFor(t, "b takes over", 3*time.Second, b.leads)
	a.mu.Lock()
	defer a.mu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(a.ended) == 0 || !a.ended[0].Before(b.began[0]) {
		t.Fatalf("a ended %v, b began %v: a must stop first", a.ended, b.began)
	}
}

// A process that is not eligible does not campaign, even for a free lease.
func TestIneligibleProcessDoesNotCampaign(t *testing.T) {
	s := lease.NewMemory(time.Second)
	var active atomic.Int32
	var ok atomic.Bool
	a := campaignIf(s, "a", ok.Load, &active, t)
	defer a.stop()
	time.Sleep(300 * time.Millisecond)
	if a.leads() || s.Holder("ovn") != "" {
		t.Fatalf("an ineligible process took the lease (holder %q)", s.Holder("ovn"))
	}
	ok.Store(true)
	waitFor(t, "a leads once eligible", time.Second, a.leads)
}
