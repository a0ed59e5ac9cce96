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
	qv, _ := h.queues.LoadOrStore(id, &batchQueue{})
	q := qv.(*batchQueue)
	w := &waiter{cmd: cmd, meta: meta, done: make(chan any, 1), lead: make(chan struct{}, 1)}
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
			out := o.(outcome[S])
			return out.res, out.err
		case <-w.lead:
			h.lead(ctx, id, q)
		}
	}
}

// batchQueue is one aggregate's commands waiting for a batched commit.
// busy is true while a caller leads (appends a batch); the leader hands
// over to the first waiting caller when it is done.
type batchQueue struct {
	mu      sync.Mutex
	waiting []*waiter
	busy    bool
}

// waiter is one caller's command in a batch. done receives its
// outcome[S]; lead asks it to lead the next batch.
type waiter struct {
	cmd  any
	meta Meta
	done chan any
	lead chan struct{}
}

type outcome[S any] struct {
	res Result[S]
	err error
}

func (w *waiter) answer(o any) { w.done <- o }

// lead commits the next batch of q and hands over.
func (h *Handler[S, C]) lead(ctx context.Context, id string, q *batchQueue) {
	q.mu.Lock()
	n := min(len(q.waiting), MaxBatch)
	batch := slices.Clone(q.waiting[:n])
	q.waiting = slices.Delete(q.waiting, 0, n)
	q.mu.Unlock()

	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), batchTimeout)
	h.commitBatch(bctx, id, batch)
	cancel()

	q.mu.Lock()
	if len(q.waiting) == 0 {
		q.busy = false
	} else {
		q.waiting[0].lead <- struct{}{}
	}
	q.mu.Unlock()
}

// commitBatch decides and appends batch as one commit, answering each
// waiter exactly once.
func (h *Handler[S, C]) commitBatch(ctx context.Context, id string, batch []*waiter) {
	mu := &h.locks[stripe(id)]
	mu.Lock()
	defer mu.Unlock()
	fail := func(ws []*waiter, err error) {
		for _, w := range ws {
			w.answer(outcome[S]{err: err})
		}
	}
	e, err := h.entry(ctx, id)
	if err != nil {
		fail(batch, err)
		return
	}
	open := batch
	for attempt := 1; ; attempt++ {
		state := e.state
		var (
			events   []domain.Event
			ids      []string
			accepted []*waiter // with events, in order
			noops    []*waiter // accepted, nothing to write
			refused  []*waiter
			reasons  []error
			again    []*waiter // same command id as an accepted one of this batch
		)
		for _, w := range open {
			if w.meta.Scope != "" && e.version > 0 && h.Owner != nil && h.Owner(e.state) != w.meta.Scope {
				h.refused(w.cmd.(C), errNotInScope)
				w.answer(outcome[S]{err: domain.NotFoundf("%s %s not found", h.decider.Type, id)})
				continue
			}
			if seq, ok := e.commands.get(w.meta.CommandID); ok {
				w.answer(outcome[S]{res: Result[S]{Seq: seq, Version: e.version, State: e.state, Duplicate: true}})
				continue
			}
			if w.meta.CommandID != "" && slices.Contains(ids, w.meta.CommandID) {
				again = append(again, w)
				continue
			}
			evs, err := h.decider.Decide(state, w.cmd.(C))
			switch {
			case err != nil:
				refused, reasons = append(refused, w), append(reasons, err)
			case len(evs) == 0:
				noops = append(noops, w)
			default:
				state = h.decider.Fold(state, evs)
				events = append(events, evs...)
				ids = append(ids, w.meta.CommandID)
				accepted = append(accepted, w)
			}
		}
		if len(refused) > 0 {
			// A refusal may rest on a stale cache: decide the whole batch
			// again if the subject has newer commits.
			newer, cerr := h.catchUp(ctx, id, e)
			if cerr == nil && newer.lastSeq != e.lastSeq {
				e, open = newer, slices.Concat(accepted, noops, again, refused)
				continue
			}
			for i, w := range refused {
				h.refused(w.cmd.(C), reasons[i])
				w.answer(outcome[S]{err: reasons[i]})
			}
		}
		if len(accepted) == 0 {
			for _, w := range slices.Concat(noops, again) {
				w.answer(outcome[S]{res: Result[S]{Seq: e.lastSeq, Version: e.version, State: e.state}})
			}
			return
		}
		raw, err := domain.Encode(events)
		if err != nil {
			fail(slices.Concat(accepted, noops, again), fmt.Errorf("encode %s events: %w", h.decider.Type, err))
			return
		}
		first := accepted[0].meta
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
			// This very batch landed before (an earlier attempt whose
			// answer was lost): its commit is the truth.
			if e, err = h.catchUp(ctx, id, e); err != nil {
				fail(slices.Concat(accepted, noops, again), err)
				return
			}
			for _, w := range slices.Concat(accepted, again) {
				w.answer(outcome[S]{res: Result[S]{Seq: seq, Version: e.version, State: e.state, Duplicate: true}})
			}
			for _, w := range noops {
				w.answer(outcome[S]{res: Result[S]{Seq: e.lastSeq, Version: e.version, State: e.state}})
			}
			return
		}
		if err == nil {
			for _, w := range accepted {
				h.Metrics.CommandAppended(h.decider.Type, commandName(w.cmd))
			}
			next := e.apply(h.decider, events, seq, ids...)
			h.cache.put(id, next)
			h.maybeSnapshot(id, next)
			for _, w := range accepted {
				w.answer(outcome[S]{res: Result[S]{Seq: seq, Version: next.version, State: next.state}})
			}
			for _, w := range again {
				w.answer(outcome[S]{res: Result[S]{Seq: seq, Version: next.version, State: next.state, Duplicate: true}})
			}
			for _, w := range noops {
				w.answer(outcome[S]{res: Result[S]{Seq: seq, Version: next.version, State: next.state}})
			}
			return
		}
		if conflict := errors.Is(err, ErrConcurrency); !conflict || attempt >= MaxAttempts {
			if conflict {
				for _, w := range accepted {
					h.Metrics.CommandRefused(h.decider.Type, commandName(w.cmd), "concurrency")
				}
				err = fmt.Errorf("%s %s: %w after %d attempts", h.decider.Type, id, ErrConcurrency, attempt)
			} else {
				h.cache.drop(id)
				err = fmt.Errorf("append to %s %s: %w", h.decider.Type, id, err)
			}
			fail(slices.Concat(accepted, noops, again), err)
			return
		}
		if e, err = h.catchUp(ctx, id, e); err != nil {
			fail(slices.Concat(accepted, noops, again), err)
			return
		}
		open = slices.Concat(accepted, noops, again)
	}
}

// batchID names a commit of several commands: the same commands give the
// same id, so the store recognises a retried batch, and a batch of other
// commands never collides with it.
func batchID(ids []string) string {
	sum := sha256.Sum256([]byte(strings.Join(ids, "\n")))
	return "batch:" + hex.EncodeToString(sum[:16])
}
