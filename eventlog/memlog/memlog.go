// Package memlog is the in-memory event log: Keel's eventlog ports without a
// server, for unit tests and simulations. It keeps JetStream's rules (one
// commit per append, optimistic concurrency per aggregate, a retried command
// id recognised as landed, durable subscription positions by name) and
// passes the same contract suite, eventlog/eventlogtest.
//
// Nothing survives the process: it must not be used where commits matter.
package memlog

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/eventlog"
)

// Log is an event log in memory, safe for concurrent use. Its zero value is
// not ready: use New.
type Log struct {
	mu        sync.Mutex
	commits   [][]byte            // commits[i] is the commit at sequence i+1, as stored
	types     []string            // types[i] is the aggregate type of commits[i]
	subjects  map[string][]uint64 // aggregate type/id -> its sequences
	commandAt map[string]uint64   // command id -> sequence where it landed
	changed   chan struct{}       // closed and replaced on every append and release
	groups    map[string]*group   // durable subscription name -> its position
}

var _ eventlog.Log = (*Log)(nil)

// New returns an empty log.
func New() *Log {
	return &Log{subjects: map[string][]uint64{}, commandAt: map[string]uint64{},
		changed: make(chan struct{}), groups: map[string]*group{}}
}

func subject(aggregateType, id string) string { return aggregateType + "/" + id }

// Append implements eventlog.Store. Command ids are remembered for the
// life of the log (JetStream forgets them after its duplicate window, then
// recognises a retry by the aggregate's last commit alone).
func (l *Log) Append(ctx context.Context, env *domain.Envelope, expectedSeq uint64) (uint64, bool, error) {
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	data, err := json.Marshal(env)
	if err != nil {
		return 0, false, fmt.Errorf("encode commit: %w", err)
	}
	subj := subject(env.AggregateType, env.AggregateID)
	l.mu.Lock()
	defer l.mu.Unlock()
	if seq, ok := l.commandAt[env.CommandID]; ok && env.CommandID != "" {
		return seq, true, nil
	}
	seqs := l.subjects[subj]
	var last uint64
	if len(seqs) > 0 {
		last = seqs[len(seqs)-1]
	}
	if last != expectedSeq {
		return 0, false, fmt.Errorf("append to %s: %w", subj, eventlog.ErrConcurrency)
	}
	l.commits, l.types = append(l.commits, data), append(l.types, env.AggregateType)
	seq := uint64(len(l.commits))
	l.subjects[subj] = append(seqs, seq)
	if env.CommandID != "" {
		l.commandAt[env.CommandID] = seq
	}
	l.wake()
	return seq, false, nil
}

// Load implements eventlog.Store.
func (l *Log) Load(ctx context.Context, aggregateType, id string, after uint64) ([]domain.Envelope, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []domain.Envelope
	for _, seq := range l.subjects[subject(aggregateType, id)] {
		if seq <= after {
			continue
		}
		env, err := l.at(seq)
		if err != nil {
			return nil, err
		}
		out = append(out, env)
	}
	return out, nil
}

// LastSequence implements eventlog.Store and eventlog.Follower.
func (l *Log) LastSequence(ctx context.Context) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return uint64(len(l.commits)), nil
}

// Get returns the commit at one sequence.
func (l *Log) Get(ctx context.Context, seq uint64) (domain.Envelope, error) {
	if err := ctx.Err(); err != nil {
		return domain.Envelope{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if seq == 0 || seq > uint64(len(l.commits)) {
		return domain.Envelope{}, fmt.Errorf("get commit %d: no such commit", seq)
	}
	return l.at(seq)
}

// at decodes the commit at seq, as a reader of the real log would see it.
// The caller holds l.mu.
func (l *Log) at(seq uint64) (domain.Envelope, error) {
	data := l.commits[seq-1]
	var env domain.Envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return env, fmt.Errorf("decode commit %d: %w", seq, err)
	}
	env.Sequence, env.Raw = seq, data
	return env, nil
}

// Follow implements eventlog.Follower.
func (l *Log) Follow(ctx context.Context, from, to uint64, fn func([]domain.Envelope) error) error {
	if from == 0 {
		from = 1
	}
	if to > 0 && from > to {
		return nil // nothing to hand over
	}
	for {
		batch, changed, err := l.batch(from, to)
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-changed:
				continue
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if err := fn(batch); err != nil {
			return err
		}
		last := batch[len(batch)-1].Sequence
		if to > 0 && last >= to {
			return nil
		}
		from = last + 1
	}
}

// batch returns up to eventlog.MaxBatch commits from sequence from (not
// beyond to, when to > 0), and the channel closed by the next append.
func (l *Log) batch(from, to uint64) ([]domain.Envelope, <-chan struct{}, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	end := min(uint64(len(l.commits)), from-1+eventlog.MaxBatch)
	if to > 0 {
		end = min(end, to)
	}
	var out []domain.Envelope
	for seq := from; seq <= end; seq++ {
		env, err := l.at(seq)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, env)
	}
	return out, l.changed, nil
}

// wake tells every waiting follower and subscriber to look again. The
// caller holds l.mu.
func (l *Log) wake() {
	close(l.changed)
	l.changed = make(chan struct{})
}
