package httpapi

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Backlog bounds the work accepted ahead of what the saga and the
// projections have done, so that a burst of creates meets a 503 with
// Retry-After instead of growing a queue that takes minutes to drain.
// Limits of zero or less are off.
type Backlog struct {
	// MaxLag is how many commits the read model may be behind the log.
	MaxLag uint64
	// MaxBusy is how many servers may have a task in progress at once.
	MaxBusy int
	// Lag and Busy measure the two (from the log's head, the projections'
	// checkpoints and the read model).
	Lag  func(ctx context.Context) (uint64, error)
	Busy func(ctx context.Context) (int, error)
	// Every is how long a measure is reused (default 250 ms).
	Every time.Duration

	mu     sync.Mutex
	at     time.Time
	reason string
}

// Full returns why new work should wait, or "". A failed measure lets the
// work in: back-pressure must not turn a read-model hiccup into an outage.
func (b *Backlog) Full(ctx context.Context) string {
	if b == nil || (b.MaxLag <= 0 && b.MaxBusy <= 0) {
		return ""
	}
	every := b.Every
	if every <= 0 {
		every = 250 * time.Millisecond
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if time.Since(b.at) < every {
		return b.reason
	}
	b.reason, b.at = b.measure(ctx), time.Now()
	return b.reason
}

func (b *Backlog) measure(ctx context.Context) string {
	if b.MaxLag > 0 && b.Lag != nil {
		if lag, err := b.Lag(ctx); err == nil && lag > b.MaxLag {
			return fmt.Sprintf("the read model is %d commits behind the event log (limit %d)", lag, b.MaxLag)
		}
	}
	if b.MaxBusy > 0 && b.Busy != nil {
		if busy, err := b.Busy(ctx); err == nil && busy >= b.MaxBusy {
			return fmt.Sprintf("%d servers are being built or changed (limit %d)", busy, b.MaxBusy)
		}
	}
	return ""
}
