package hostlink

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/keel-cloud/keel/adapters/agent"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/eventlog"
)

// piece is a piece of work a host was handed.
type piece struct {
	ack  string
	work agent.Work
}

// Work implements agent.ControlPlane: it takes the work keel serve hands
// to hosts (a real host's own, or, for a simulated fleet, that of the
// simulated hosts it runs) and runs do on each piece, one at a time per
// server, in order. A failing do is tried again in place, with a growing
// pause, while keel serve is told it is in progress; after ParkAttempts
// tries over at least ParkAfter it is given up and parked in keel serve
// (keel parked list, under WorkParked), so that the server's later work
// goes through.
func (c *Client) Work(ctx context.Context, hosts []string, do func(context.Context, agent.Work) error) error {
	subject := workRequestSubject("*", true)
	if !c.sim {
		if len(hosts) != 1 || hosts[0] != c.creds.Host {
			return fmt.Errorf("the credentials of host %s do not take the work of %v", c.creds.Host, hosts)
		}
		subject = workRequestSubject(commands.HostID(c.creds.Host), false)
	}
	mine := map[string]bool{}
	for _, h := range hosts {
		mine[h] = true
	}
	q := &keyed[piece]{queues: map[string][]piece{}}
	var mu sync.Mutex
	stopping := false
	taken := map[string]bool{} // ack subjects queued or running: a piece handed again is not run twice
	run := func(p piece) {
		c.run(ctx, p, do)
		mu.Lock()
		delete(taken, p.ack)
		mu.Unlock()
	}
	answer := func(m *nats.Msg, err string) {
		data, _ := json.Marshal(handReply{Error: err})
		_ = m.Respond(data)
	}
	sub, err := c.nc.Subscribe(subject, func(m *nats.Msg) {
		var h handedWork
		var w agent.Work
		if json.Unmarshal(m.Data, &h) != nil || json.Unmarshal(h.Work, &w) != nil || h.Ack == "" {
			answer(m, "malformed work")
			return
		}
		if !mine[w.Host] {
			answer(m, "not this agent's host") // another fleet's: keel serve hands it out again
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if stopping {
			answer(m, "the agent is stopping")
			return
		}
		answer(m, "")
		if !taken[h.Ack] {
			taken[h.Ack] = true
			q.push(w.Host+"/"+w.Server, piece{ack: h.Ack, work: w}, run)
		}
	})
	if err != nil {
		return fmt.Errorf("take work: %w", err)
	}
	<-ctx.Done()
	_ = sub.Unsubscribe()
	mu.Lock()
	stopping = true // no piece is queued after this
	mu.Unlock()
	q.wait()
	return nil
}

// run carries out one piece of work.
func (c *Client) run(ctx context.Context, p piece, do func(context.Context, agent.Work) error) {
	w := p.work
	if w.Spec != nil && len(w.SealedPassword) > 0 {
		pw, err := c.open(w)
		if err != nil {
			w.PasswordError = "this host could not open it: " + err.Error()
		}
		w.Spec.AdminPassword = pw
	}
	first, wait := time.Now(), min(time.Second, max(c.parkAfter(), 10*time.Millisecond))
	for attempt := 1; ; attempt++ {
		err := c.keepAlive(ctx, p, func() error { return do(ctx, w) })
		if err == nil {
			c.finish(p, "ack")
			return
		}
		if ctx.Err() != nil {
			c.finish(p, "nak") // the agent stops: the next one does it
			return
		}
		if attempt >= c.parkAttempts() && time.Since(first) >= c.parkAfter() {
			c.log.Error("work given up after repeated failures; parked", "host", w.Host, "server", w.Server, "kind", w.Kind, "attempts", attempt, "err", err)
			if perr := c.park(ctx, w, attempt, first, err); perr != nil {
				c.log.Error("the given-up work could not be parked in keel serve; it will be handed again", "host", w.Host, "server", w.Server, "err", perr)
				c.finish(p, "nak")
				return
			}
			c.finish(p, "term")
			return
		}
		c.log.Warn("work failed; trying again", "host", w.Host, "server", w.Server, "kind", w.Kind, "attempt", attempt, "in", wait, "err", err)
		if c.keepAlive(ctx, p, func() error {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
				return nil
			}
		}) != nil {
			c.finish(p, "nak")
			return
		}
		wait = min(2*wait, 30*time.Second, max(c.parkAfter(), 10*time.Millisecond))
	}
}

// finish tells keel serve what became of a piece (it acknowledges it).
// Lost, the piece is handed out again after the ack wait: work is
// idempotent.
func (c *Client) finish(p piece, outcome string) {
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	if err := c.retried(ctx, p.work.Host, VerbDone, progressRequest{Ack: p.ack, Outcome: outcome}, nil); err != nil {
		c.log.Warn("tell keel serve a piece of work is done", "host", p.work.Host, "server", p.work.Server, "outcome", outcome, "err", err)
	}
}

func (c *Client) parkAttempts() int {
	if c.ParkAttempts > 0 {
		return c.ParkAttempts
	}
	return eventlog.DefaultParkAttempts
}

func (c *Client) parkAfter() time.Duration {
	if c.ParkAfter > 0 {
		return c.ParkAfter
	}
	return eventlog.DefaultParkAfter
}

// open opens the admin password keel serve sealed to this host.
func (c *Client) open(w agent.Work) ([]byte, error) {
	if c.creds.Seal == nil {
		return nil, fmt.Errorf("its credentials hold no seal key (credentials of an earlier Keel: take a fresh copy)")
	}
	pw, err := c.creds.Seal.Open(w.SealedPassword, w.Sealer)
	if err != nil {
		return nil, fmt.Errorf("it was not sealed to this host's key")
	}
	return pw, nil
}

// keepAlive runs f while telling keel serve that p is in progress, so that
// it is not handed out again meanwhile.
func (c *Client) keepAlive(ctx context.Context, p piece, f func() error) error {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(workAckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if err := c.request(ctx, p.work.Host, VerbProgress, progressRequest{Ack: p.ack}, nil); err != nil {
					c.log.Warn("tell keel serve a piece of work is in progress", "host", p.work.Host, "server", p.work.Server, "err", err)
				}
			}
		}
	}()
	err := f()
	close(done)
	wg.Wait()
	return err
}

// keyed runs the items of each key one at a time, in order, and different
// keys at once.
type keyed[T any] struct {
	mu     sync.Mutex
	queues map[string][]T
	wg     sync.WaitGroup
}

func (k *keyed[T]) push(key string, item T, run func(T)) {
	k.mu.Lock()
	q, busy := k.queues[key]
	k.queues[key] = append(q, item)
	if !busy {
		k.wg.Add(1)
	}
	k.mu.Unlock()
	if busy {
		return
	}
	go func() {
		defer k.wg.Done()
		for {
			k.mu.Lock()
			q := k.queues[key]
			if len(q) == 0 {
				delete(k.queues, key)
				k.mu.Unlock()
				return
			}
			item := q[0]
			k.queues[key] = q[1:]
			k.mu.Unlock()
			run(item)
		}
	}()
}

func (k *keyed[T]) wait() { k.wg.Wait() }
