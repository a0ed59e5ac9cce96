package memlog

import (
	"context"
	"fmt"
	"sync"

	"github.com/keel-cloud/keel/eventlog"
)

// Lot is an eventlog.ParkingLot in memory. Its zero value is ready.
type Lot struct {
	mu     sync.Mutex
	parked map[lotKey]eventlog.ParkedCommit
}

type lotKey struct {
	sub string
	seq uint64
}

var _ eventlog.ParkingLot = (*Lot)(nil)

// Park implements eventlog.ParkingLot.
func (l *Lot) Park(ctx context.Context, pc eventlog.ParkedCommit) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.parked == nil {
		l.parked = map[lotKey]eventlog.ParkedCommit{}
	}
	l.parked[lotKey{pc.Subscription, pc.Sequence}] = pc
	return nil
}

// Get implements eventlog.ParkingLot.
func (l *Lot) Get(ctx context.Context, sub string, seq uint64) (eventlog.ParkedCommit, error) {
	if err := ctx.Err(); err != nil {
		return eventlog.ParkedCommit{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	pc, ok := l.parked[lotKey{sub, seq}]
	if !ok {
		return pc, fmt.Errorf("%s %d: %w", sub, seq, eventlog.ErrNotParked)
	}
	return pc, nil
}

// List implements eventlog.ParkingLot.
func (l *Lot) List(ctx context.Context, sub, after string, limit int) ([]eventlog.ParkedCommit, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	l.mu.Lock()
	all := make([]eventlog.ParkedCommit, 0, len(l.parked))
	for _, pc := range l.parked {
		all = append(all, pc)
	}
	l.mu.Unlock()
	return eventlog.PageParked(all, sub, after, limit)
}

// Retry implements eventlog.ParkingLot.
func (l *Lot) Retry(ctx context.Context, sub string, seq uint64) error {
	return l.update(ctx, sub, seq, func(pc *eventlog.ParkedCommit, k lotKey) { pc.State = eventlog.StateRetry; l.parked[k] = *pc })
}

// Remove implements eventlog.ParkingLot.
func (l *Lot) Remove(ctx context.Context, sub string, seq uint64) error {
	return l.update(ctx, sub, seq, func(_ *eventlog.ParkedCommit, k lotKey) { delete(l.parked, k) })
}

func (l *Lot) update(ctx context.Context, sub string, seq uint64, f func(*eventlog.ParkedCommit, lotKey)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	k := lotKey{sub, seq}
	pc, ok := l.parked[k]
	if !ok {
		return fmt.Errorf("%s %d: %w", sub, seq, eventlog.ErrNotParked)
	}
	f(&pc, k)
	return nil
}
