package monitors

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/host"
)

// HostLiveness is one host's recorded liveness.
type HostLiveness struct {
	ID   string
	Name string
	Down bool
}

// LivenessSource lists hosts with their recorded liveness (read model).
type LivenessSource interface {
	Liveness(ctx context.Context) ([]HostLiveness, error)
}

// Liveness turns heartbeats into host.down and host.up events. Heartbeats
// never reach the event log; only the changes do. Several replicas may run
// one each: the host aggregate ignores a second down or up.
//
// A host is down when its agent said goodbye (it stopped cleanly) or sent
// no heartbeat for Timeout, and up again only once a heartbeat arrives: a
// host recorded down is not trusted before its agent is heard from, even
// right after this monitor starts.
type Liveness struct {
	App     *commands.App
	Hosts   LivenessSource
	Timeout time.Duration // no heartbeat for this long: down (default 30 s)
	Log     *slog.Logger
	Now     func() time.Time

	mu       sync.Mutex
	lastSeen map[string]time.Time
	gone     map[string]time.Time // when each host's agent said goodbye
	started  time.Time
	poke     chan struct{}
}

// Beat records a heartbeat of a host id.
func (l *Liveness) Beat(hostID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lastSeen == nil {
		l.lastSeen = map[string]time.Time{}
	}
	l.lastSeen[hostID] = l.now()
}

func (l *Liveness) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// Goodbye records that a host's agent stopped cleanly, and has the next
// check run at once.
func (l *Liveness) Goodbye(hostID string) {
	l.mu.Lock()
	if l.gone == nil {
		l.gone = map[string]time.Time{}
	}
	l.gone[hostID] = l.now()
	poke := l.pokeChan()
	l.mu.Unlock()
	select {
	case poke <- struct{}{}:
	default:
	}
}

// pokeChan returns the channel that wakes Run; l.mu is held.
func (l *Liveness) pokeChan() chan struct{} {
	if l.poke == nil {
		l.poke = make(chan struct{}, 1)
	}
	return l.poke
}

// heard is what the monitor knows of one host's agent.
type heard struct {
	last  time.Time // last heartbeat, or the monitor's start when none came
	beat  bool      // a heartbeat came since the monitor started
	gone  bool      // the agent said goodbye after its last heartbeat
	since time.Time // the goodbye's time when gone
}

func (l *Liveness) heard(hostID string) heard {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := heard{last: l.started}
	if t, ok := l.lastSeen[hostID]; ok {
		h.last, h.beat = t, true
	}
	if t, ok := l.gone[hostID]; ok && (!h.beat || t.After(h.last)) {
		h.gone, h.since = true, t
	}
	return h
}

// Run checks every interval until ctx ends.
func (l *Liveness) Run(ctx context.Context, every time.Duration) {
	if l.Timeout == 0 {
		l.Timeout = 30 * time.Second
	}
	l.mu.Lock()
	l.started = l.now()
	poke := l.pokeChan()
	l.mu.Unlock()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-poke:
		}
		if err := l.check(ctx); err != nil && ctx.Err() == nil {
			l.Log.Warn("liveness check", "err", err)
		}
	}
}

func (l *Liveness) check(ctx context.Context) error {
	hosts, err := l.Hosts.Liveness(ctx)
	if err != nil {
		return err
	}
	now := l.now()
	for _, h := range hosts {
		cmd := l.decide(h, l.heard(h.ID), now)
		if cmd == nil {
			continue
		}
		meta := commands.Meta{CommandID: commands.NewID(), Actor: domain.Actor{User: "liveness"}}
		if _, err := l.App.Hosts.Handle(ctx, h.ID, cmd, meta); err != nil && domain.KindOf(err) == 0 {
			return err
		}
	}
	return nil
}

// decide returns the command that brings a host's recorded liveness in line
// with what was heard of its agent, or nil.
func (l *Liveness) decide(h HostLiveness, a heard, now time.Time) host.Command {
	switch {
	case a.gone && !h.Down:
		l.Log.Info("host is down: its agent stopped", "host", h.Name, "at", a.since)
		return host.MarkDown{LastSeen: a.last, At: now.UTC()}
	case a.gone:
		return nil
	case !a.beat && h.Down:
		return nil // not trusted before its first heartbeat
	}
	silent := now.Sub(a.last) > l.Timeout
	switch {
	case silent && !h.Down:
		l.Log.Warn("host is down: no heartbeat", "host", h.Name, "last_seen", a.last)
		return host.MarkDown{LastSeen: a.last, At: now.UTC()}
	case !silent && h.Down:
		l.Log.Info("host is up again", "host", h.Name)
		return host.MarkUp{At: now.UTC()}
	}
	return nil
}
