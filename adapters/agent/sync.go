package agent

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	hostdomain "github.com/keel-cloud/keel/domain/host"
	"github.com/keel-cloud/keel/domain/server"
)

// Watcher is what a driver that hears its hypervisor's events offers: a
// signal each time a guest changes state, so that the agent syncs at once
// rather than at its next period. The channel closes when ctx ends.
type Watcher interface {
	Watch(ctx context.Context) (<-chan struct{}, error)
}

// DefaultSyncEvery is the period of the observed-state sync of a real
// compute node.
const DefaultSyncEvery = 30 * time.Second

// syncLoop keeps what the control plane records true to what host h runs:
// at once when the agent starts (after a host reboot, servers that should
// run start again), then every period and on each hypervisor event.
func (a *Agent) syncLoop(ctx context.Context, h Host) {
	every := a.SyncEvery
	var events <-chan struct{}
	if w, ok := h.Driver.(Watcher); ok {
		ch, err := w.Watch(ctx)
		if err != nil {
			a.Log.Warn("hypervisor events unavailable; syncing on the period only", "host", h.Info.Name, "err", err)
		}
		events = ch
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := a.Sync(ctx, h); err != nil && ctx.Err() == nil {
			a.Log.Warn("sync", "host", h.Info.Name, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case _, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			// Let a burst of events (a start is several) settle first.
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
		drain:
			for {
				select {
				case <-events:
				default:
					break drain
				}
			}
		}
	}
}

// Sync compares what host h runs with what the control plane recorded of
// the servers placed on it, and reports each difference as an
// observation; the server aggregate decides what it means (drift, a lost
// server, or nothing while a task runs). Servers are read before the
// hypervisor, so that one spawned in between is not taken for missing.
func (a *Agent) Sync(ctx context.Context, h Host) error {
	rec, err := a.Link.Servers(ctx, h.Info.Name)
	if err != nil {
		return fmt.Errorf("read what Keel recorded of host %s: %w", h.Info.Name, err)
	}
	mine := map[string]RecordedServer{}
	for _, r := range rec.Servers {
		mine[r.ID] = r
	}
	obs, err := h.Driver.Observe(ctx)
	if err != nil {
		return fmt.Errorf("observe host %s: %w", h.Info.Name, err)
	}
	seen := map[string]Power{}
	var unknown []string
	for _, o := range obs {
		if _, ok := mine[o.ID]; o.ID == "" || !ok {
			unknown = append(unknown, o.Name)
			continue
		}
		seen[o.ID] = o.Power
	}
	if err := a.reportUnknown(ctx, h.Info.Name, rec.UnknownGuests, unknown); err != nil {
		return err
	}
	ids := make([]string, 0, len(mine))
	for id := range mine {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		r := mine[id]
		if r.Host != h.Info.Name || r.Task != server.NoTask || (r.Status != server.StatusActive && r.Status != server.StatusStopped) {
			continue // not settled here: a task, a build or a delete owns it
		}
		p, present := seen[id]
		if present && server.Power(p) == r.Power {
			continue
		}
		a.Log.Debug("observed state differs", "host", h.Info.Name, "server", id, "recorded", r.Power, "observed", describe(p, present))
		o := Observation{Server: id, Version: r.Version, Power: server.Power(p), Missing: !present}
		if err := a.Link.Observe(ctx, h.Info.Name, o); err != nil {
			return fmt.Errorf("report what host %s runs of server %s: %w", h.Info.Name, id, err)
		}
	}
	return nil
}

func describe(p Power, present bool) string {
	if !present {
		return "missing"
	}
	return string(p)
}

// reportUnknown records on the host the guests Keel did not create, when
// they differ from what the host last recorded: an operator's business,
// never touched by Keel.
func (a *Agent) reportUnknown(ctx context.Context, host string, recorded, names []string) error {
	sort.Strings(names)
	if slices.Equal(names, recorded) || (len(names) == 0 && len(recorded) == 0) {
		return nil
	}
	if len(names) > 0 {
		a.Log.Warn("guests Keel did not create run on this host; left alone", "host", host, "guests", strings.Join(names, ","))
	}
	if len(names) > maxUnknown {
		names = names[:maxUnknown] // the rest are in the log line above
	}
	if err := a.Link.UnknownGuests(ctx, host, names, recorded); err != nil {
		return fmt.Errorf("record the unknown guests of host %s: %w", host, err)
	}
	return nil
}

// maxUnknown is how many unknown guests a host records.
const maxUnknown = hostdomain.MaxUnknownGuests
