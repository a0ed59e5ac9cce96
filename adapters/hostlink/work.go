package hostlink

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keel-cloud/keel/adapters/agent"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/eventlog"
)

// Work implements agent.ControlPlane: it reads the work of hosts (a real
// host's own queue, or the simulated fleet's stream, keeping its own
// hosts' work) and runs do on each piece, one at a time per server, in
// order. A failing do is tried again in place, with a growing pause,
// while the piece is kept from being delivered elsewhere; after
// ParkAttempts tries over at least ParkAfter it is given up and parked
// in keel serve (keel parked list, under WorkParked), for an operator to
// retry or skip, so that the server's later work goes through.
func (c *Client) Work(ctx context.Context, hosts []string, do func(context.Context, agent.Work) error) error {
	var cons jetstream.Consumer
	var err error
	if c.sim {
		c.fleetOnce.Do(func() {
			_, c.fleetErr = c.js.CreateOrUpdateConsumer(ctx, SimWorkStream, fleetConsumerConfig(c.name))
		})
		if c.fleetErr != nil {
			return fmt.Errorf("make the fleet's work consumer: %w", c.fleetErr)
		}
		cons, err = c.js.Consumer(ctx, SimWorkStream, FleetConsumer(c.name))
	} else {
		if len(hosts) != 1 || hosts[0] != c.creds.Host {
			return fmt.Errorf("the credentials of host %s do not read the work of %v", c.creds.Host, hosts)
		}
		cons, err = c.js.Consumer(ctx, WorkStream, HostConsumer(commands.HostID(c.creds.Host)))
	}
	if err != nil {
		return fmt.Errorf("open the work queue: %w", err)
	}
	mine := map[string]bool{}
	for _, h := range hosts {
		mine[h] = true
	}
	q := &keyed{queues: map[string][]jetstream.Msg{}}
	run := func(m jetstream.Msg) { c.run(ctx, m, do) }
	cc, err := cons.Consume(func(m jetstream.Msg) {
		var w agent.Work
		if err := json.Unmarshal(m.Data(), &w); err != nil {
			c.log.Error("undecodable work dropped", "subject", m.Subject(), "err", err)
			_ = m.Term()
			return
		}
		if !mine[w.Host] {
			_ = m.Ack() // another fleet's host
			return
		}
		q.push(w.Host+"/"+w.Server, m, run)
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if ctx.Err() == nil {
			c.log.Debug("work queue", "err", err)
		}
	}))
	if err != nil {
		return fmt.Errorf("read the work queue: %w", err)
	}
	<-ctx.Done()
	cc.Stop()
	q.wait()
	return nil
}

// run carries out one piece of work.
func (c *Client) run(ctx context.Context, m jetstream.Msg, do func(context.Context, agent.Work) error) {
	var w agent.Work
	if err := json.Unmarshal(m.Data(), &w); err != nil {
		_ = m.Term()
		return
	}
	if w.Spec != nil && len(w.SealedPassword) > 0 {
		pw, err := c.open(w)
		if err != nil {
			w.PasswordError = "this host could not open it: " + err.Error()
		}
		w.Spec.AdminPassword = pw
	}
	first, wait := time.Now(), min(time.Second, max(c.parkAfter(), 10*time.Millisecond))
	for attempt := 1; ; attempt++ {
		err := c.keepAlive(ctx, m, func() error { return do(ctx, w) })
		if err == nil {
			_ = m.Ack()
			return
		}
		if ctx.Err() != nil {
			_ = m.Nak() // the agent stops: the next one does it
			return
		}
		if attempt >= c.parkAttempts() && time.Since(first) >= c.parkAfter() {
			c.log.Error("work given up after repeated failures; parked", "host", w.Host, "server", w.Server, "kind", w.Kind, "attempts", attempt, "err", err)
			if perr := c.park(ctx, w, attempt, first, err); perr != nil {
				c.log.Error("the given-up work could not be parked in keel serve", "host", w.Host, "server", w.Server, "err", perr)
			}
			_ = m.Term()
			return
		}
		c.log.Warn("work failed; trying again", "host", w.Host, "server", w.Server, "kind", w.Kind, "attempt", attempt, "in", wait, "err", err)
		if c.keepAlive(ctx, m, func() error {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
				return nil
			}
		}) != nil {
			_ = m.Nak()
			return
		}
		wait = min(2*wait, 30*time.Second, max(c.parkAfter(), 10*time.Millisecond))
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

// keepAlive runs f while telling JetStream that m is in progress, so that
// it is not delivered again meanwhile.
func (c *Client) keepAlive(ctx context.Context, m jetstream.Msg, f func() error) error {
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
				_ = m.InProgress()
			}
		}
	}()
	err := f()
	close(done)
	wg.Wait()
	return err
}

// keyed runs the messages of each key one at a time, in order, and
// different keys at once.
type keyed struct {
	mu     sync.Mutex
	queues map[string][]jetstream.Msg
	wg     sync.WaitGroup
}

func (k *keyed) push(key string, m jetstream.Msg, run func(jetstream.Msg)) {
	k.mu.Lock()
	q, busy := k.queues[key]
	k.queues[key] = append(q, m)
	k.mu.Unlock()
	if busy {
		return
	}
	k.wg.Add(1)
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
			m := q[0]
			k.queues[key] = q[1:]
			k.mu.Unlock()
			run(m)
		}
	}()
}

func (k *keyed) wait() { k.wg.Wait() }
