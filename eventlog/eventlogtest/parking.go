package eventlogtest

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/keel-cloud/keel/eventlog"
)

// RunParkingLot runs the contract of eventlog.ParkingLot against the lots
// newLot returns, one fresh lot per test.
func RunParkingLot(t *testing.T, newLot func(t *testing.T) eventlog.ParkingLot) {
	tests := []struct {
		name string
		run  func(*testing.T, eventlog.ParkingLot)
	}{
		{"EmptyLotListsNothing", emptyLotListsNothing},
		{"ParkedCommitReadsBackAsParked", parkedCommitReadsBackAsParked},
		{"UnknownCommitIsNotParked", unknownCommitIsNotParked},
		{"RetryMarksAndRemoveForgets", retryMarksAndRemoveForgets},
		{"ListPagesInOrderBySubscription", listPagesInOrderBySubscription},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newLot(t)) })
	}
}

// Parked builds the record of a commit of subscription sub at seq.
func Parked(sub string, seq uint64) eventlog.ParkedCommit {
	at := time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.UTC)
	return eventlog.ParkedCommit{Subscription: sub, Sequence: seq, AggregateType: "server", AggregateID: fmt.Sprint("s", seq),
		Key: fmt.Sprint("op", seq), Attempts: 10, Reason: "host sim-1: connection refused", FirstFailedAt: at,
		ParkedAt: at.Add(time.Minute), State: eventlog.StateParked}
}

func mustGet(t *testing.T, l eventlog.ParkingLot, sub string, seq uint64) eventlog.ParkedCommit {
	t.Helper()
	pc, err := l.Get(ctxT(t), sub, seq)
	if err != nil {
		t.Fatalf("Get %s %d: %v", sub, seq, err)
	}
	return pc
}

func samePark(t *testing.T, got, want eventlog.ParkedCommit) {
	t.Helper()
	if !got.FirstFailedAt.Equal(want.FirstFailedAt) || !got.ParkedAt.Equal(want.ParkedAt) {
		t.Fatalf("times read back %v/%v, parked %v/%v", got.FirstFailedAt, got.ParkedAt, want.FirstFailedAt, want.ParkedAt)
	}
	got.FirstFailedAt, got.ParkedAt, want.FirstFailedAt, want.ParkedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("read back %+v, parked %+v", got, want)
	}
}

func emptyLotListsNothing(t *testing.T, l eventlog.ParkingLot) {
	for _, sub := range []string{"", "saga-servers-v1"} {
		page, next, err := l.List(ctxT(t), sub, "", 10)
		if err != nil || len(page) != 0 || next != "" {
			t.Fatalf("List %q of an empty lot: %v, next %q, %v", sub, page, next, err)
		}
	}
}

func parkedCommitReadsBackAsParked(t *testing.T, l eventlog.ParkingLot) {
	ctx := ctxT(t)
	pc := Parked("saga-servers-v1", 7)
	if err := l.Park(ctx, pc); err != nil {
		t.Fatal(err)
	}
	samePark(t, mustGet(t, l, "saga-servers-v1", 7), pc)
	// Parking again replaces the record.
	pc.Attempts, pc.Reason = 11, "still refused"
	if err := l.Park(ctx, pc); err != nil {
		t.Fatal(err)
	}
	samePark(t, mustGet(t, l, "saga-servers-v1", 7), pc)
}

func unknownCommitIsNotParked(t *testing.T, l eventlog.ParkingLot) {
	ctx := ctxT(t)
	if err := l.Park(ctx, Parked("saga-servers-v1", 7)); err != nil {
		t.Fatal(err)
	}
	for _, k := range []struct {
		sub string
		seq uint64
	}{{"saga-servers-v1", 8}, {"agent-embedded-v1", 7}} {
		if _, err := l.Get(ctx, k.sub, k.seq); !errors.Is(err, eventlog.ErrNotParked) {
			t.Errorf("Get %s %d: %v, want ErrNotParked", k.sub, k.seq, err)
		}
		if err := l.Retry(ctx, k.sub, k.seq); !errors.Is(err, eventlog.ErrNotParked) {
			t.Errorf("Retry %s %d: %v, want ErrNotParked", k.sub, k.seq, err)
		}
		if err := l.Remove(ctx, k.sub, k.seq); !errors.Is(err, eventlog.ErrNotParked) {
			t.Errorf("Remove %s %d: %v, want ErrNotParked", k.sub, k.seq, err)
		}
	}
	if _, err := l.Get(ctx, "agent-embedded-v1", 7); !errors.Is(err, eventlog.ErrNotParked) {
		t.Fatal("a Retry of an unknown commit created it")
	}
}

func retryMarksAndRemoveForgets(t *testing.T, l eventlog.ParkingLot) {
	ctx := ctxT(t)
	pc := Parked("saga-servers-v1", 7)
	for _, p := range []eventlog.ParkedCommit{pc, Parked("saga-servers-v1", 8)} {
		if err := l.Park(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Retry(ctx, "saga-servers-v1", 7); err != nil {
		t.Fatal(err)
	}
	pc.State = eventlog.StateRetry
	samePark(t, mustGet(t, l, "saga-servers-v1", 7), pc)
	if got := mustGet(t, l, "saga-servers-v1", 8); got.State != eventlog.StateParked {
		t.Fatalf("the other commit is %s", got.State)
	}
	if err := l.Remove(ctx, "saga-servers-v1", 7); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Get(ctx, "saga-servers-v1", 7); !errors.Is(err, eventlog.ErrNotParked) {
		t.Fatalf("Get after Remove: %v", err)
	}
	mustGet(t, l, "saga-servers-v1", 8)
}

func listPagesInOrderBySubscription(t *testing.T, l eventlog.ParkingLot) {
	ctx := ctxT(t)
	// Names that are not valid key tokens are kept apart all the same.
	subs := []string{"agent-embedded-v1", "a.b", "a/b", "a b", "été", "=YS5i", "*", ">", "saga-servers-v1"}
	seqs := []uint64{12, 3, 100}
	for _, s := range subs {
		for _, q := range seqs {
			if err := l.Park(ctx, Parked(s, q)); err != nil {
				t.Fatalf("Park %q %d: %v", s, q, err)
			}
		}
	}
	var got []string
	pages := 0
	for after := ""; ; pages++ {
		page, next, err := l.List(ctx, "", after, 4)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 4 {
			t.Fatalf("page of %d records, limit 4", len(page))
		}
		for _, pc := range page {
			got = append(got, eventlog.ParkCursor(pc.Subscription, pc.Sequence))
		}
		if next == "" {
			break
		}
		after = next
	}
	var want []string
	for _, s := range sortedStrings(subs) {
		for _, q := range []uint64{3, 12, 100} {
			want = append(want, eventlog.ParkCursor(s, q))
		}
	}
	if !reflect.DeepEqual(got, want) || pages != 6 {
		t.Fatalf("listed in %d pages:\n%q\nwant\n%q", pages+1, got, want)
	}
	for _, s := range subs {
		page, next, err := l.List(ctx, s, "", 10)
		if err != nil || next != "" || len(page) != 3 {
			t.Fatalf("List %q = %d records, next %q, %v", s, len(page), next, err)
		}
		for _, pc := range page {
			if pc.Subscription != s {
				t.Fatalf("List %q returned a record of %q", s, pc.Subscription)
			}
		}
	}
}

func sortedStrings(in []string) []string {
	out := append([]string(nil), in...)
	sort.Strings(out)
	return out
}
