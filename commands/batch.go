package commands

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keel-cloud/keel/domain"
)

// MaxBatch bounds how many commands one batched commit carries.
const MaxBatch = 256

// batchTimeout bounds one batched commit. Callers wait for its outcome
// whatever their own context says: a caller that left early would not know
// whether its command landed (a quota reservation held for a server never
// made).
const batchTimeout = 30 * time.Second

// HandleBatched is Handle for commands that many callers send to one hot
// aggregate at once (a project's quota reservations, one per server
// create). Commands that arrive while a commit of the aggregate is being
// appended wait and then go together into the next commit: each is
// decided in turn against the state its predecessors leave, the accepted
// ones' events are appended as one envelope (Envelope.Commands names
// them), and each caller gets its own answer. Throughput then follows the
// batch size instead of one append round trip per command.
//
// Each command keeps Handle's guarantees: a command id already landed is a
// duplicate, a refusal is final only against the subject's last commit,
// and a lost race retries. IfVersion is not batched (Handle is used).
// The envelope carries the first accepted command's actor and request;
// the others' are in their own aggregates' commits.
func (h *Handler[S, C]) HandleBatched(ctx context.Context, id string, cmd C, meta Meta) (Result[S], error) {
	if meta.IfVersion != 0 {
		return h.Handle(ctx, id, cmd, meta)
	}
	qv, _ := h.queues.LoadOrStore(id, &batchQueue[S, C]{})
	q := qv.(*batchQueue[S, C])
	w := &waiter[S, C]{cmd: cmd, meta: meta, done: make(chan outcome[S], 1), lead: make(chan struct{}, 1)}
	q.mu.Lock()
	q.waiting = append(q.waiting, w)
	leader := !q.busy
	q.busy = true
	q.mu.Unlock()
	if leader {
		h.lead(ctx, id, q)
	}
	for {
		select {
		case o := <-w.done:
			return o.res, o.err
		case <-w.lead:
			h.lead(ctx, id, q)
		}
	}
}

// batchQueue is one aggregate's commands waiting for a batched commit.
// busy is true while a caller leads (appends a batch); the leader hands
// over to the first waiting caller when it is done.
type batchQueue[S, C any] struct {
	mu      sync.Mutex
	waiting []*waiter[S, C]
	busy    bool
}

// waiter is one caller's command in a batch: done receives its outcome;
// lead asks it to lead the next batch.
type waiter[S, C any] struct {
	cmd  C
	meta Meta
	done chan outcome[S]
	lead chan struct{}
}

type outcome[S any] struct {
	res Result[S]
	err error
}

// lead commits the next batch of q, answers its callers, and hands over.
func (h *Handler[S, C]) lead(ctx context.Context, id string, q *batchQueue[S, C]) {
	q.mu.Lock()
	n := min(len(q.waiting), MaxBatch)
	batch := slices.Clone(q.waiting[:n])
	q.waiting = slices.Delete(q.waiting, 0, n)
	q.mu.Unlock()

	cmds, metas := make([]C, n), make([]Meta, n)
	for i, w := range batch {
		cmds[i], metas[i] = w.cmd, w.meta
	}
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), batchTimeout)
	outs := h.commit(bctx, id, cmds, metas, false)
	cancel()
	for i, w := range batch {
		w.done <- outs[i]
	}

	q.mu.Lock()
	if len(q.waiting) == 0 {
		q.busy = false
	} else {
		q.waiting[0].lead <- struct{}{}
	}
	q.mu.Unlock()
}

// commit decides cmds (with their metas) in turn against aggregate id and
// appends the accepted ones' events as one commit, retrying a bounded
// number of times when another writer moved the aggregate on; it returns
// each command's outcome. Handle is a commit of one command. assumeNew
// decides against the initial state when nothing is cached (Create).
func (h *Handler[S, C]) commit(ctx context.Context, id string, cmds []C, metas []Meta, assumeNew bool) []outcome[S] {
	out := make([]outcome[S], len(cmds))
	fail := func(is []int, err error) {
		for _, i := range is {
			out[i] = outcome[S]{err: err}
		}
	}
	open := make([]int, len(cmds))
	for i := range open {
		open[i] = i
	}
	mine := make([][]domain.Event, len(cmds)) // each accepted command's events
	mu := &h.locks[stripe(id)]
	mu.Lock()
	defer mu.Unlock()
	e, ok := h.cache.get(id)
	if !ok && assumeNew {
		e = &entry[S]{state: h.decider.Initial(id), commands: newRecent()}
	} else if !ok {
		var err error
		if e, err = h.entry(ctx, id); err != nil {
			fail(open, err)
			return out
		}
	}
	for attempt := 1; ; attempt++ {
		state := e.state
		var (
			events   []domain.Event
			ids      []string
			accepted []int // with events, in order
			noops    []int // accepted, nothing to write
			refused  []int
			again    []int // same command id as an accepted one of this commit
			recheck  bool  // the cache was behind an IfVersion: decide again
		)
		for _, i := range open {
			m := metas[i]
			if m.Scope != "" && e.version > 0 && h.Owner != nil && h.Owner(e.state) != m.Scope {
				h.refused(cmds[i], errNotInScope)
				out[i] = outcome[S]{err: domain.NotFoundf("%s %s not found", h.decider.Type, id)}
				continue
			}
			if seq, ok := e.commands.get(m.CommandID); ok {
				out[i] = outcome[S]{res: Result[S]{Seq: seq, Version: e.version, State: e.state, Duplicate: true}}
				continue
			}
			if m.CommandID != "" && slices.Contains(ids, m.CommandID) {
				again = append(again, i)
				continue
			}
			if m.IfVersion != 0 && e.version != m.IfVersion {
				// The cache may be behind: only the subject's last commit can say no.
				newer, err := h.catchUp(ctx, id, e)
				if err != nil {
					out[i] = outcome[S]{err: err}
					continue
				}
				if newer.version != m.IfVersion {
					out[i] = outcome[S]{err: &StaleError{Type: h.decider.Type, ID: id, Want: m.IfVersion, Current: newer.version}}
					continue
				}
				e, recheck = newer, true
				break
			}
			evs, err := h.decider.Decide(state, cmds[i])
			switch {
			case err != nil:
				refused = append(refused, i)
				out[i] = outcome[S]{err: err}
			case len(evs) == 0:
				noops = append(noops, i)
			default:
				state = h.decider.Fold(state, evs)
				mine[i] = evs
				events = append(events, evs...)
				ids = append(ids, m.CommandID)
				accepted = append(accepted, i)
			}
		}
		if recheck {
			attempt-- // not a lost race
			continue
		}
		if len(refused) > 0 {
			// A refusal may rest on a stale cache (another replica moved
			// the aggregate on): decide again if the subject has newer
			// commits.
			newer, cerr := h.catchUp(ctx, id, e)
			if cerr == nil && newer.lastSeq != e.lastSeq {
				e, open = newer, slices.Concat(accepted, noops, again, refused)
				continue
			}
			for _, i := range refused {
				h.refused(cmds[i], out[i].err)
			}
		}
		pending := slices.Concat(accepted, noops, again)
		if len(accepted) == 0 {
			for _, i := range pending {
				out[i] = outcome[S]{res: Result[S]{Seq: e.lastSeq, Version: e.version, State: e.state}}
			}
			return out
		}
		raw, err := domain.Encode(events)
		if err != nil {
			fail(pending, fmt.Errorf("encode %s events: %w", h.decider.Type, err))
			return out
		}
		first := metas[accepted[0]]
		env := &domain.Envelope{
			CommandID: first.CommandID, AggregateType: h.decider.Type, AggregateID: id,
			Version: e.version + 1, Events: raw, OccurredAt: h.Now().UTC(), Actor: first.Actor,
			RequestID: first.RequestID, CorrelationID: first.CorrelationID, CausationID: first.CausationID,
		}
		if len(accepted) > 1 {
			env.CommandID, env.Commands = batchID(ids), ids
		}
		if h.Owner != nil {
			env.Project = h.Owner(state)
		}
		seq, dup, err := h.store.Append(ctx, env, e.lastSeq)
		if err == nil && dup {
			// Another attempt with this command id landed first (another
			// replica, or a retry): its commit, not ours, is the truth.
			if e, err = h.catchUp(ctx, id, e); err != nil {
				fail(pending, err)
				return out
			}
			for _, i := range slices.Concat(accepted, again) {
				out[i] = outcome[S]{res: Result[S]{Seq: seq, Version: e.version, State: e.state, Duplicate: true}}
			}
			for _, i := range noops {
				out[i] = outcome[S]{res: Result[S]{Seq: e.lastSeq, Version: e.version, State: e.state}}
			}
			return out
		}
		if err == nil {
			next := e.apply(h.decider, events, seq, ids...)
			h.cache.put(id, next)
			h.maybeSnapshot(id, next)
			for _, i := range accepted {
				h.Metrics.CommandAppended(h.decider.Type, commandName(cmds[i]))
			}
			for _, i := range pending {
				out[i] = outcome[S]{res: Result[S]{Seq: seq, Version: next.version, State: next.state, Duplicate: slices.Contains(again, i)}}
			}
			for _, i := range accepted {
				out[i].res.Events = mine[i]
			}
			return out
		}
		if conflict := errors.Is(err, ErrConcurrency); !conflict || attempt >= MaxAttempts {
			if conflict {
				for _, i := range accepted {
					h.Metrics.CommandRefused(h.decider.Type, commandName(cmds[i]), "concurrency")
				}
				err = fmt.Errorf("%s %s: %w after %d attempts", h.decider.Type, id, ErrConcurrency, attempt)
			} else {
				h.cache.drop(id)
				err = fmt.Errorf("append to %s %s: %w", h.decider.Type, id, err)
			}
			fail(pending, err)
			return out
		}
		if e, err = h.catchUp(ctx, id, e); err != nil {
			fail(pending, err)
			return out
		}
		open = pending
	}
}

// batchID names a commit of several commands: the same commands give the
// same id, so the store recognises a retried batch, and a batch of other
// commands never collides with it.
func batchID(ids []string) string {
	sum := sha256.Sum256([]byte(strings.Join(ids, "\n")))
	return "batch:" + hex.EncodeToString(sum[:16])
}
