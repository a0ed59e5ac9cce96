package commands_test

import (
	"context"
	"sync"
	"testing"
	"time"

	keeljs "github.com/keel-cloud/keel/adapters/jetstream"
	"github.com/keel-cloud/keel/adapters/jetstream/jstest"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
)

// openStore starts an embedded NATS server and opens the real event store.
func openStore(t *testing.T) *keeljs.Store {
	_, s := jstest.Store(t, 0)
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// counted passes every call through to the real store and counts them.
type counted struct {
	*keeljs.Store
	mu      sync.Mutex
	loads   int
	appends map[string]int // command id -> Append calls
}

func newCounted(s *keeljs.Store) *counted { return &counted{Store: s, appends: map[string]int{}} }

func (c *counted) Append(ctx context.Context, env *domain.Envelope, expectedSeq uint64) (uint64, bool, error) {
	c.mu.Lock()
	c.appends[env.CommandID]++
	c.mu.Unlock()
	return c.Store.Append(ctx, env, expectedSeq)
}

func (c *counted) Load(ctx context.Context, typ, id string, after uint64) ([]domain.Envelope, error) {
	c.mu.Lock()
	c.loads++
	c.mu.Unlock()
	return c.Store.Load(ctx, typ, id, after)
}

func (c *counted) loadCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.loads
}

// The counter aggregate accepts every command: it isolates the handler's
// own behaviour (cache, retry, idempotency) from any business rule.
type counterState struct {
	N       int
	Applied []string // the commands' tags, in order
}

type inc struct{ Tag string }

type incremented struct {
	Tag string `json:"tag"`
}

func (*incremented) EventType() string { return "counter.incremented" }

var counter = domain.Decider[counterState, inc]{
	Type: "counter",
	Decide: func(s counterState, c inc) ([]domain.Event, error) {
		if c.Tag == "refuse" {
			return nil, domain.Conflictf("refused")
		}
		return []domain.Event{&incremented{Tag: c.Tag}}, nil
	},
	Evolve: func(s counterState, ev domain.Event) counterState {
		if e, ok := ev.(*incremented); ok {
			s.N++
			s.Applied = append(append([]string(nil), s.Applied...), e.Tag)
		}
		return s
	},
	Registry: domain.Registry{"counter.incremented": func() domain.Event { return &incremented{} }},
}

func newCounter(store commands.EventStore) *commands.Handler[counterState, inc] {
	return commands.New(store, counter, 1000)
}

func meta(id string) commands.Meta {
	return commands.Meta{CommandID: id, Actor: domain.Actor{User: "test"}}
}

// history returns the commits of one aggregate straight from the store.
func history(t *testing.T, s *keeljs.Store, typ, id string) []domain.Envelope {
	t.Helper()
	envs, err := s.Load(context.Background(), typ, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	return envs
}

func head(t *testing.T, s *keeljs.Store) uint64 {
	t.Helper()
	seq, err := s.LastSequence(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return seq
}
