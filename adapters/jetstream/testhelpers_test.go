package jetstream_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	keeljs "github.com/keel-cloud/keel/adapters/jetstream"
	"github.com/keel-cloud/keel/adapters/jetstream/jstest"
	"github.com/keel-cloud/keel/domain"
)

// startServer starts an embedded NATS server on dir (see jstest).
func startServer(t *testing.T, dir string) *keeljs.Embedded { return jstest.Server(t, dir) }

// openStore starts a fresh embedded server and opens the event store on it.
func openStore(t *testing.T, dupWindow time.Duration) (*keeljs.Embedded, *keeljs.Store) {
	return jstest.Store(t, dupWindow)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// testEvent is a minimal event for envelopes written straight to the store.
type testEvent struct {
	N int `json:"n"`
}

func (*testEvent) EventType() string { return "test.happened" }

// envelope builds a commit of aggregate typ/id at version with command id cmd.
func envelope(t *testing.T, typ, id string, version uint64, cmd string) *domain.Envelope {
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

// mustAppend appends and fails the test on error or on a duplicate.
func mustAppend(t *testing.T, s *keeljs.Store, env *domain.Envelope, expected uint64) uint64 {
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

func streamMsgs(t *testing.T, s *keeljs.Store) uint64 {
	t.Helper()
	info, err := s.Stream().Info(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
