// Package eventlogtest is the contract suite of the eventlog ports: Run
// checks an implementation (adapters/jetstream against an embedded NATS,
// eventlog/memlog in memory) for what Keel relies on: optimistic
// concurrency per aggregate, retries recognised by command id, loads in
// order, following the log in batches, and durable subscriptions that
// deliver every commit at least once, in key order, and resume by name.
//
// It is imported by tests only; it must not know any implementation.
package eventlogtest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/eventlog"
)

// Open returns a fresh, empty log that lives until the test ends.
type Open func(t *testing.T) eventlog.Log

// Run runs the contract suite against the logs open returns, one per test.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		run  func(*testing.T, eventlog.Log)
	}{
		{"AppendIsOptimisticPerAggregate", appendIsOptimisticPerAggregate},
		{"ConcurrentAppendsLandOnce", concurrentAppendsLandOnce},
		{"RetryOfALandedCommitIsADuplicate", retryOfALandedCommitIsADuplicate},
		{"AppendWithACancelledContextWritesNothing", appendWithACancelledContextWritesNothing},
		{"LoadReturnsOneAggregateInOrder", loadReturnsOneAggregateInOrder},
		{"FollowHandsOverEveryCommitInBatches", followHandsOverEveryCommitInBatches},
		{"FollowWaitsForNewCommits", followWaitsForNewCommits},
		{"FollowStopsOnTheHandlersError", followStopsOnTheHandlersError},
		{"SubscriptionDeliversOnceInKeyOrderAndResumes", subscriptionDeliversOnceInKeyOrderAndResumes},
		{"SubscriptionRetriesAFailedCommitBeforeLaterOnes", subscriptionRetriesAFailedCommitBeforeLaterOnes},
		{"SubscriptionsByNameAreIndependent", subscriptionsByNameAreIndependent},
		{"SubscribersOfOneNameShareTheCommits", subscribersOfOneNameShareTheCommits},
		{"SubscriptionWithoutANameIsRefused", subscriptionWithoutANameIsRefused},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open(t)) })
	}
}

// testEvent is a minimal event for envelopes written straight to the log.
type testEvent struct {
	N int `json:"n"`
}

func (*testEvent) EventType() string { return "test.happened" }

// Envelope builds a commit of aggregate typ/id at version with command id cmd.
func Envelope(t testing.TB, typ, id string, version uint64, cmd string) *domain.Envelope {
	t.Helper()
	raw, err := domain.Encode([]domain.Event{&testEvent{N: int(version)}})
	if err != nil {
		t.Fatal(err)
	}
	return &domain.Envelope{
		CommandID: cmd, AggregateType: typ, AggregateID: id, Version: version, Events: raw,
		OccurredAt: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(version) * time.Second),
		Actor:      domain.Actor{User: "test"},
	}
}

// MustAppend appends and fails the test on an error or a duplicate.
func MustAppend(t testing.TB, s eventlog.Store, env *domain.Envelope, expected uint64) uint64 {
	t.Helper()
	seq, dup, err := s.Append(ctxT(t), env, expected)
	if err != nil {
		t.Fatalf("append %s/%s v%d (expected seq %d): %v", env.AggregateType, env.AggregateID, env.Version, expected, err)
	}
	if dup {
		t.Fatalf("append %s/%s v%d: reported duplicate for a new command", env.AggregateType, env.AggregateID, env.Version)
	}
	return seq
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds or d passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func seqOf(envs []domain.Envelope) []uint64 {
	out := make([]uint64, len(envs))
	for i, e := range envs {
		out[i] = e.Sequence
	}
	return out
}

// sameCommit fails unless got is what was appended as want, read back at seq.
func sameCommit(t *testing.T, got domain.Envelope, want *domain.Envelope, seq uint64) {
	t.Helper()
	if got.Sequence != seq || got.CommandID != want.CommandID || got.AggregateType != want.AggregateType ||
		got.AggregateID != want.AggregateID || got.Version != want.Version || !got.OccurredAt.Equal(want.OccurredAt) ||
		len(got.Events) != len(want.Events) || got.Actor.User != want.Actor.User {
		t.Fatalf("read back %+v at seq %d; appended %+v at %d", got, got.Sequence, want, seq)
	}
	var raw domain.Envelope
	if err := json.Unmarshal(got.Raw, &raw); err != nil || raw.CommandID != want.CommandID {
		t.Fatalf("Raw of seq %d does not hold the commit: %s (%v)", seq, got.Raw, err)
	}
}
