package sagas

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
type Liveness struct {
	App     *commands.App
	Hosts   LivenessSource
	Timeout time.Duration // no heartbeat for this long: down (default 30 s)
	Log     *slog.Logger
	Now     func() time.Time

	mu       sync.Mutex
	lastSeen map[string]time.Time
	started  time.Time
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

// seen returns when a host was last heard of. Hosts not heard of since the
// monitor started count from its start, so a restart gives every agent a
// full timeout to be heard.
func (l *Liveness) seen(hostID string) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.lastSeen[hostID]; ok {
		return t
	}
	return l.started
}

// Run checks every interval until ctx ends.
func (l *Liveness) Run(ctx context.Context, every time.Duration) {
	if l.Timeout == 0 {
		l.Timeout = 30 * time.Second
	}
	l.mu.Lock()
	l.started = l.now()
	l.mu.Unlock()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
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
		last := l.seen(h.ID)
		silent := now.Sub(last) > l.Timeout
		var cmd host.Command
		switch {
		case silent && !h.Down:
			l.Log.Warn("host is down: no heartbeat", "host", h.Name, "last_seen", last)
			cmd = host.MarkDown{LastSeen: last, At: now.UTC()}
		case !silent && h.Down:
			l.Log.Info("host is up again", "host", h.Name)
			cmd = host.MarkUp{At: now.UTC()}
		default:
			continue
		}
		meta := commands.Meta{CommandID: commands.NewID(), Actor: domain.Actor{User: "liveness"}}
		if _, err := l.App.Hosts.Handle(ctx, h.ID, cmd, meta); err != nil && domain.KindOf(err) == 0 {
			return err
		}
	}
	return nil
}
