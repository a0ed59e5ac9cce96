package memlog

import (
	"context"
	"sync"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/eventlog"
)

// group is the position of one durable subscription name: what its
// subscribers acknowledged, and what they hold in hand.
type group struct {
	wants    func(aggregateType string) bool
	floor    uint64          // every commit up to floor is acknowledged or not wanted
	acked    map[uint64]bool // acknowledged above floor
	taken    map[uint64]bool // handed to a running subscriber, not acknowledged yet
	released int             // counts returns of taken commits, so scans start again
}

// Subscribe implements eventlog.Subscriber: a new name starts at the
// beginning of the log, a known one where its subscribers stopped.
func (l *Log) Subscribe(ctx context.Context, sub eventlog.Subscription) error {
	if err := sub.Validate(); err != nil {
		return err
	}
	sub = sub.Defaults()
	g := l.group(sub)
	mine := map[uint64]bool{} // taken by this subscriber, not acknowledged yet
	queues := make([]chan domain.Envelope, sub.Workers)
	var wg sync.WaitGroup
	for i := range queues {
		queues[i] = make(chan domain.Envelope, 64)
		wg.Add(1)
		go func(q chan domain.Envelope) {
			defer wg.Done()
			for {
				select {
				case env := <-q:
					if sub.HandleWithRetry(ctx, env) {
						l.ack(g, env.Sequence, mine)
					}
				case <-ctx.Done():
					return
				}
			}
		}(queues[i])
	}
	l.dispatch(ctx, sub, g, queues, mine)
	wg.Wait()
	l.release(g, mine)
	return nil
}

// group returns the position of sub's name, creating it at the start.
func (l *Log) group(sub eventlog.Subscription) *group {
	l.mu.Lock()
	defer l.mu.Unlock()
	g, ok := l.groups[sub.Name]
	if !ok {
		g = &group{acked: map[uint64]bool{}, taken: map[uint64]bool{}}
		l.groups[sub.Name] = g
	}
	g.wants = sub.Wants // the latest subscriber's filter, as JetStream updates it
	return g
}

// dispatch hands every commit the group has neither acknowledged nor in
// hand to the worker of its key, in log order, until ctx ends.
func (l *Log) dispatch(ctx context.Context, sub eventlog.Subscription, g *group, queues []chan domain.Envelope, mine map[uint64]bool) {
	next, seen := uint64(1), -1
	for {
		envs, wake := l.take(g, &next, &seen, mine)
		for _, env := range envs {
			select {
			case queues[sub.WorkerOf(env)] <- env:
			case <-ctx.Done():
				return
			}
		}
		if len(envs) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		}
	}
}

// take marks the group's free commits from *next on as taken and returns
// them. When a subscriber of the group released commits since *seen, it
// scans again from the floor.
func (l *Log) take(g *group, next *uint64, seen *int, mine map[uint64]bool) ([]domain.Envelope, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.advance(g)
	if *seen != g.released {
		*next, *seen = g.floor+1, g.released
	}
	*next = max(*next, g.floor+1)
	var out []domain.Envelope
	for ; *next <= uint64(len(l.commits)) && len(out) < eventlog.MaxBatch; *next++ {
		seq := *next
		if g.acked[seq] || g.taken[seq] || !g.wants(l.types[seq-1]) {
			continue
		}
		env, err := l.at(seq)
		if err != nil {
			continue // cannot happen: commits were encoded by Append
		}
		g.taken[seq], mine[seq] = true, true
		out = append(out, env)
	}
	return out, l.changed
}

// advance moves the floor over acknowledged and unwanted commits. The
// caller holds l.mu.
func (l *Log) advance(g *group) {
	for g.floor < uint64(len(l.commits)) {
		seq := g.floor + 1
		if !g.acked[seq] && (g.taken[seq] || g.wants(l.types[seq-1])) {
			return
		}
		delete(g.acked, seq)
		g.floor = seq
	}
}

func (l *Log) ack(g *group, seq uint64, mine map[uint64]bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	g.acked[seq] = true
	delete(g.taken, seq)
	delete(mine, seq)
	l.advance(g)
}

// release returns the commits a stopped subscriber took but did not
// acknowledge, so that the group's other subscribers (now or later) get them.
func (l *Log) release(g *group, mine map[uint64]bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for seq := range mine {
		if g.taken[seq] && !g.acked[seq] {
			delete(g.taken, seq)
			n++
		}
	}
	if n > 0 {
		g.released++
		l.wake()
	}
}
