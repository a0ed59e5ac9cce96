package memlog_test

import (
	"context"
	"testing"
	"time"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/eventlog"
	"github.com/keel-cloud/keel/eventlog/eventlogtest"
	"github.com/keel-cloud/keel/eventlog/memlog"
)

func TestContract(t *testing.T) {
	eventlogtest.Run(t, func(*testing.T) eventlog.Log { return memlog.New() })
}

// A commit in hand when its subscriber stopped is delivered to the next
// subscriber of that name (JetStream does it after its ack wait, too slow
// for the contract suite).
func TestUnacknowledgedCommitIsDeliveredAgain(t *testing.T) {
	l := memlog.New()
	ctx := context.Background()
	eventlogtest.MustAppend(t, l, eventlogtest.Envelope(t, "server", "s", 1, "c1"), 0)
	started := make(chan struct{})
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- l.Subscribe(sctx, eventlog.Subscription{Name: "test-v1", Handle: func(ctx context.Context, _ domain.Envelope) error {
			close(started)
			<-ctx.Done() // a handler still busy when the process stops
			return ctx.Err()
		}})
	}()
	<-started
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := make(chan uint64, 1)
	sctx, stop = context.WithCancel(ctx)
	defer stop()
	go func() {
		_ = l.Subscribe(sctx, eventlog.Subscription{Name: "test-v1", Handle: func(_ context.Context, env domain.Envelope) error {
			got <- env.Sequence
			return nil
		}})
	}()
	select {
	case seq := <-got:
		if seq != 1 {
			t.Fatalf("delivered seq %d, want 1", seq)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the unacknowledged commit was not delivered again")
	}
}

func TestParkingLotContract(t *testing.T) {
	eventlogtest.RunParkingLot(t, func(*testing.T) eventlog.ParkingLot { return &memlog.Lot{} })
}
