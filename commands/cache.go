package commands

import (
	"sync"

	"github.com/keel-cloud/keel/domain"
)

// entry is one aggregate's folded state and what it has seen. Entries are
// only read and changed under the aggregate's stripe lock (Handle and Load
// both take it).
type entry[S any] struct {
	state    S
	version  uint64
	lastSeq  uint64
	commands *recent // the aggregate's recent command ids, for idempotent re-execution
	// snapVersion is the version of the aggregate's last snapshot that this
	// process knows of (taken or restored); 0: none.
	snapVersion uint64
}

func (e *entry[S]) copy() *entry[S] {
	return &entry[S]{state: e.state, version: e.version, lastSeq: e.lastSeq, commands: e.commands, snapVersion: e.snapVersion}
}

func (e *entry[S]) apply(d interface{ Fold(S, []domain.Event) S }, events []domain.Event, seq uint64, commandIDs ...string) *entry[S] {
	n := e.copy()
	n.state = d.Fold(n.state, events)
	n.version++
	n.lastSeq = seq
	for _, id := range commandIDs {
		n.commands.add(id, seq)
	}
	return n
}

// RecentCommands is how many command ids an aggregate remembers. A command
// retried after this many later commits on the same aggregate would not be
// recognised; the API's idempotency records (72 h) still answer a retried
// request. The bound keeps a commit O(1) on long-lived aggregates (hosts).
const RecentCommands = 1024

// recent is a bounded set of command ids with their sequences, oldest
// evicted first. It is shared by the entries of one aggregate and changed
// in place under the stripe lock.
type recent struct {
	seqs  map[string]uint64
	order []string
	next  int
}

func newRecent() *recent { return &recent{seqs: map[string]uint64{}} }

func (r *recent) get(id string) (uint64, bool) {
	if id == "" {
		return 0, false
	}
	s, ok := r.seqs[id]
	return s, ok
}

func (r *recent) add(id string, seq uint64) {
	if id == "" {
		return
	}
	if _, ok := r.seqs[id]; ok {
		return
	}
	if len(r.order) < RecentCommands {
		r.order = append(r.order, id)
	} else {
		delete(r.seqs, r.order[r.next])
		r.order[r.next] = id
		r.next = (r.next + 1) % RecentCommands
	}
	r.seqs[id] = seq
}

// list returns the remembered command ids, oldest first.
func (r *recent) list() []seenCommand {
	out := make([]seenCommand, 0, len(r.order))
	for i := range r.order {
		id := r.order[(r.next+i)%len(r.order)]
		out = append(out, seenCommand{ID: id, Seq: r.seqs[id]})
	}
	return out
}

// cache holds aggregate states keyed by id. A new entry replaces the old one
// once a commit is folded in. When full, it drops an arbitrary entry: a
// dropped aggregate is simply loaded again.
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
