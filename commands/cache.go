package commands

import (
	"sync"

	"github.com/keel-cloud/keel/domain"
)

// entry is one aggregate's folded state and what it has seen.
type entry[S any] struct {
	state    S
	version  uint64
	lastSeq  uint64
	commands map[string]uint64 // command id -> stream sequence, for idempotent re-execution
}

func (e *entry[S]) copy() *entry[S] {
	c := &entry[S]{state: e.state, version: e.version, lastSeq: e.lastSeq, commands: make(map[string]uint64, len(e.commands)+1)}
	for k, v := range e.commands {
		c.commands[k] = v
	}
	return c
}

func (e *entry[S]) apply(d interface{ Fold(S, []domain.Event) S }, events []domain.Event, seq uint64, commandID string) *entry[S] {
	n := e.copy()
	n.state = d.Fold(n.state, events)
	n.version++
	n.lastSeq = seq
	if commandID != "" {
		n.commands[commandID] = seq
	}
	return n
}

// cache holds aggregate states keyed by id. Entries are immutable once
// stored, so readers never see a half-applied commit. When full, it drops an
// arbitrary entry: a dropped aggregate is simply loaded again.
type cache[S any] struct {
	mu      sync.Mutex
	max     int
	entries map[string]*entry[S]
}

func newCache[S any](max int) *cache[S] {
	if max <= 0 {
		max = 100_000
	}
	return &cache[S]{max: max, entries: map[string]*entry[S]{}}
}

func (c *cache[S]) get(id string) (*entry[S], bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[id]
	return e, ok
}

func (c *cache[S]) put(id string, e *entry[S]) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[id]; !ok && len(c.entries) >= c.max {
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[id] = e
}

func (c *cache[S]) drop(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, id)
}
