// Package eventlog holds the ports to Keel's event log: Store (append and
// load one aggregate's commits), Follower (read the whole log in order, in
// batches: projections and rebuilds) and Subscriber (durable subscriptions
// by aggregate type: sagas, host agents, billing and audit). Everything
// reactive depends on these interfaces, never on a transport. Beside them,
// ParkingLot keeps the commits whose reaction kept failing, and Parking
// wraps a Subscriber to park them (parking.go, parker.go).
//
// Implementations live elsewhere: adapters/jetstream on NATS JetStream, and
// eventlog/memlog in memory for unit tests. eventlog/eventlogtest is the one
// contract suite both pass. This package must not import a transport: it
// speaks of aggregate types and stream positions, not of subjects.
package eventlog

import (
	"context"
	"errors"
	"hash/fnv"
	"log/slog"
	"time"

	"github.com/keel-cloud/keel/domain"
)

// ErrConcurrency is what Store.Append returns when the aggregate's last
// commit is no longer at the expected sequence: another writer moved it on
// since it was read. It is the only optimistic-concurrency error in Keel.
var ErrConcurrency = errors.New("aggregate was changed by another writer")

// MaxBatch bounds the commits a Follower hands over in one batch.
const MaxBatch = 1000

// Store appends commits and reads one aggregate's commits back.
type Store interface {
	// Append writes one commit if the aggregate's last commit is still at
	// stream sequence expectedSeq (0: the aggregate has no commit yet), and
	// returns the commit's sequence. Otherwise it returns ErrConcurrency
	// (wrapped or not: compare with errors.Is).
	//
	// A retried append whose command id already landed is not written
	// again: duplicate is true and seq is the sequence of the commit that
	// landed, whose events the caller must read rather than trust its own.
	Append(ctx context.Context, env *domain.Envelope, expectedSeq uint64) (seq uint64, duplicate bool, err error)
	// Load returns the aggregate's commits with a sequence above after, in
	// order, with Sequence and Raw filled in. An aggregate without commits
	// has none, and no error.
	Load(ctx context.Context, aggregateType, id string, after uint64) ([]domain.Envelope, error)
	// LastSequence is the sequence of the log's last commit (0 when empty).
	LastSequence(ctx context.Context) (uint64, error)
}

// Follower reads the whole log in order.
type Follower interface {
	// Follow hands fn the commits from sequence from (1 when 0) on, in
	// order, in batches of at most MaxBatch, with Sequence and Raw filled
	// in. When to > 0 it returns nil once the commit at to was handed over
	// (it waits for it if the log is shorter); otherwise it waits for new
	// commits. It returns nil when ctx ends and fn's error when fn fails.
	Follow(ctx context.Context, from, to uint64, fn func(batch []domain.Envelope) error) error
	// LastSequence is the sequence of the log's last commit (0 when empty).
	LastSequence(ctx context.Context) (uint64, error)
}

// Subscriber runs durable subscriptions.
type Subscriber interface {
	// Subscribe hands the commits of the subscription's aggregate types to
	// its Handle until ctx ends, then returns nil; it returns an error only
	// when the subscription cannot start. Delivery is at least once: a
	// commit whose Handle failed is handled again before the later commits
	// of its key, and a commit not acknowledged when a subscriber stopped is
	// delivered again to the next one of that name.
	Subscribe(ctx context.Context, sub Subscription) error
}

// Log is the whole event log: what the composition root wires.
type Log interface {
	Store
	Follower
	Subscriber
}

// Subscription describes a durable subscriber. Its position is kept by the
// log under Name, so it resumes where it stopped; subscribers that run at
// once under one name (replicas) share the commits.
type Subscription struct {
	// Name is the durable name, versioned (saga-servers-v1): renaming it
	// re-consumes the log from the start.
	Name string
	// AggregateTypes are the aggregate types whose commits are delivered
	// (none: every type).
	AggregateTypes []string
	// Workers is the number of commits handled at once (default 1).
	// Commits with the same Key are handled one at a time, in log order.
	Workers int
	// Key picks the ordering key of a commit (default: its aggregate id).
	Key func(env domain.Envelope) string
	// Handle processes one commit. nil acknowledges it; an error has it
	// handled again after a delay, before the later commits of its key.
	// Handlers ignore refusals, so what fails there is transient.
	Handle func(ctx context.Context, env domain.Envelope) error
	// Log receives retries and undecodable commits (nil: discarded).
	Log *slog.Logger
}

// Defaults fills in Workers, Key and Log when unset.
func (s Subscription) Defaults() Subscription {
	if s.Workers < 1 {
		s.Workers = 1
	}
	if s.Key == nil {
		s.Key = func(env domain.Envelope) string { return env.AggregateID }
	}
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	return s
}

// Validate says what makes a subscription unusable.
func (s Subscription) Validate() error {
	if s.Name == "" {
		return errors.New("subscription without a name")
	}
	if s.Handle == nil {
		return errors.New("subscription " + s.Name + " without a handler")
	}
	return nil
}

// Wants reports whether the subscription takes commits of aggregate type t.
func (s Subscription) Wants(t string) bool {
	if len(s.AggregateTypes) == 0 {
		return true
	}
	for _, a := range s.AggregateTypes {
		if a == t {
			return true
		}
	}
	return false
}

// WorkerOf is the worker (0 to Workers-1) that handles env: the same for
// every commit of one key, so that their order holds. Call it on a
// subscription with Defaults applied.
func (s Subscription) WorkerOf(env domain.Envelope) int {
	h := fnv.New32a()
	h.Write([]byte(s.Key(env)))
	return int(h.Sum32() % uint32(s.Workers))
}

// HandleWithRetry calls Handle until it succeeds, waiting longer after each
// failure (50 ms up to 5 s), and reports whether it did; false means ctx
// ended first and the commit stays unacknowledged. Retrying in place rather
// than later keeps the order of the commits of one key.
func (s Subscription) HandleWithRetry(ctx context.Context, env domain.Envelope) bool {
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		if ctx.Err() != nil {
			return false
		}
		err := s.Handle(ctx, env)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		s.Log.Warn("subscriber retries commit", "durable", s.Name, "seq", env.Sequence, "in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}
