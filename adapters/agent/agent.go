package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/keel-cloud/keel/domain/server"
)

// Agent runs the hosts of one agent process.
type Agent struct {
	// Name identifies the agent process in logs.
	Name string
	// Link is the way to the control plane: registration, work, reports,
	// heartbeats. The agent holds no other.
	Link  ControlPlane
	Hosts []Host
	Log   *slog.Logger
	// CallTimeout bounds one driver call.
	CallTimeout time.Duration
	// HeartbeatEvery is the heartbeat period (default 5 s).
	HeartbeatEvery time.Duration
	// SyncEvery is the period of the observed-state sync (see Sync); zero:
	// no sync (simulated fleets, whose hosts cannot drift).
	SyncEvery time.Duration

	byName     map[string]Driver
	registered bool
}

// Register records every managed host (a no-op when unchanged), 32 at a
// time. Run registers too, unless Register already succeeded.
func (a *Agent) Register(ctx context.Context) error {
	if a.registered {
		return nil
	}
	work := make(chan Host)
	errs := make(chan error, 32)
	var wg sync.WaitGroup
	for range min(32, len(a.Hosts)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for h := range work {
				if err := a.Link.Register(ctx, h.Info); err != nil {
					select {
					case errs <- fmt.Errorf("register host %s: %w", h.Info.Name, err):
					default:
					}
				}
			}
		}()
	}
	for _, h := range a.Hosts {
		work <- h
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	a.registered = true
	return nil
}

// Run does the work of the agent's hosts until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	a.byName = map[string]Driver{}
	names := make([]string, 0, len(a.Hosts))
	for _, h := range a.Hosts {
		a.byName[h.Info.Name] = h.Driver
		names = append(names, h.Info.Name)
	}
	if a.CallTimeout == 0 {
		a.CallTimeout = 5 * time.Minute
	}
	if err := a.Register(ctx); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { defer close(done); a.heartbeat(ctx) }()
	defer func() { <-done }() // the goodbye is sent before Run returns
	for _, h := range a.Hosts {
		stop, err := a.Link.AnswerConsole(h.Info.Name, func(data []byte) []byte {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			return a.answerConsole(cctx, h, data)
		})
		if err != nil {
			return fmt.Errorf("answer console-log requests of host %s: %w", h.Info.Name, err)
		}
		defer stop()
		if d, ok := h.Driver.(DisplayOpener); ok { // simulated hosts have no display
			stopDisplays, err := a.Link.ServeDisplays(h.Info.Name, func(ctx context.Context, id string) (io.ReadWriteCloser, error) {
				return d.OpenVNC(ctx, id)
			})
			if err != nil {
				return fmt.Errorf("serve the displays of host %s: %w", h.Info.Name, err)
			}
			defer stopDisplays()
		}
	}
	if a.SyncEvery > 0 {
		var wg sync.WaitGroup
		defer wg.Wait()
		for _, h := range a.Hosts {
			wg.Add(1)
			go func() { defer wg.Done(); a.syncLoop(ctx, h) }()
		}
	}
	return a.Link.Work(ctx, names, a.act)
}

// heartbeat tells the control plane every period that each host is alive,
// and says goodbye for each when ctx ends, so that a cleanly stopped agent's
// hosts are down at once instead of after the heartbeat timeout. Heartbeats
// go over core NATS, never into the event log.
func (a *Agent) heartbeat(ctx context.Context) {
	defer a.goodbye()
	every := a.HeartbeatEvery
	if every == 0 {
		every = 5 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	sick := map[string]bool{} // hosts whose hypervisor does not answer
	for {
		for _, h := range a.Hosts {
			if c, ok := h.Driver.(Checker); ok {
				cctx, cancel := context.WithTimeout(ctx, every)
				err := c.Check(cctx)
				cancel()
				if err != nil && ctx.Err() == nil {
					// The host is down for the control plane at once (no
					// new servers, actions fail), until its hypervisor
					// answers again.
					if !sick[h.Info.Name] {
						a.Log.Warn("hypervisor unreachable: host down until it answers", "host", h.Info.Name, "err", err)
						sick[h.Info.Name] = true
					}
					if err := a.Link.Beat(h.Info.Name, false); err != nil {
						a.Log.Warn("goodbye", "host", h.Info.Name, "err", err)
					}
					continue
				}
				if sick[h.Info.Name] {
					a.Log.Info("hypervisor answers again: host up", "host", h.Info.Name)
					delete(sick, h.Info.Name)
				}
			}
			if err := a.Link.Beat(h.Info.Name, true); err != nil {
				a.Log.Warn("heartbeat", "host", h.Info.Name, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *Agent) goodbye() {
	for _, h := range a.Hosts {
		if err := a.Link.Beat(h.Info.Name, false); err != nil {
			a.Log.Warn("goodbye", "host", h.Info.Name, "err", err)
		}
	}
	if err := a.Link.Flush(); err != nil {
		a.Log.Warn("goodbye", "err", err)
	}
}

// act performs one piece of work on a managed host, then reports.
func (a *Agent) act(ctx context.Context, w Work) error {
	d, mine := a.byName[w.Host]
	if !mine || w.Host == "" {
		return nil // another agent's host (a simulated fleet reads the work of every simulated host)
	}
	id := w.Server
	var call func(context.Context, Driver) error
	var ok, fail server.ReportKind
	doing := "clean up the server" // what the call does, in the user's words
	port := ""                     // the NIC's port, for interface reports
	switch w.Kind {
	case WorkSpawn:
		ok, fail, doing = server.ReportSpawned, server.ReportSpawnFailed, "build the server"
		if w.Spec == nil {
			return fmt.Errorf("spawn work for server %s carries no spec", id)
		}
		spec := *w.Spec
		call = func(ctx context.Context, d Driver) error {
			if w.PasswordError != "" {
				return Failf(errors.New(w.PasswordError), "the admin password could not be given to this host: %s", w.PasswordError)
			}
			return d.Spawn(ctx, spec)
		}
	case WorkStart:
		ok, fail, doing = server.ReportStarted, server.ReportActionFailed, "start the server"
		call = func(ctx context.Context, d Driver) error { return d.PowerOn(ctx, id) }
	case WorkStop:
		ok, fail, doing = server.ReportStopped, server.ReportActionFailed, "stop the server"
		call = func(ctx context.Context, d Driver) error { return d.PowerOff(ctx, id) }
	case WorkReboot:
		ok, fail, doing = server.ReportRebooted, server.ReportActionFailed, "reboot the server"
		call = func(ctx context.Context, d Driver) error { return d.Reboot(ctx, id, w.Hard) }
	case WorkDelete:
		ok = server.ReportDestroyed
		call = func(ctx context.Context, d Driver) error { return d.Destroy(ctx, id) }
	case WorkCleanup:
		call = func(ctx context.Context, d Driver) error { return d.Destroy(ctx, id) }
	case WorkAttachNIC, WorkDetachNIC, WorkUnplugNIC, WorkReplugNIC:
		j, err := nicJob(w)
		if err != nil {
			return err
		}
		call, ok, fail, doing, port = j.call, j.ok, j.fail, j.doing, j.port
	default:
		a.Log.Warn("work of an unknown kind ignored", "host", w.Host, "server", id, "kind", w.Kind)
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, a.CallTimeout)
	err := call(cctx, d)
	cancel()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	kind, reason, detail := ok, "", ""
	if err != nil {
		a.Log.Info("host call failed", "host", w.Host, "server", id, "err", err)
		kind, reason, detail = fail, Reason(err, doing), plain(err.Error(), server.MaxReportDetail)
		if fail == "" {
			return fmt.Errorf("%s server %s on %s: %w", w.Kind, id, w.Host, err) // retried
		}
	}
	if kind == "" {
		return nil
	}
	err = a.Link.Report(ctx, w.Host, WorkReport{Seq: w.Seq, Index: w.Index, Server: id, Kind: kind, Port: port, Reason: reason, Detail: detail,
		Correlation: w.Correlation, Causation: w.Causation})
	if errors.Is(err, ErrRefused) {
		a.Log.Warn("report refused by the control plane", "host", w.Host, "server", id, "kind", kind, "err", err)
		return nil // final: trying again would be refused again
	}
	return err
}

// nicJob is what interface work asks of a driver and how it is reported:
// an attach or detach the user asked for is reported with its port; an
// unplug or replug (undoing what a failed attach or detach may have done)
// is not, and is tried again until done; a server gone is done.
func nicJob(w Work) (nicWork, error) {
	if w.NIC == nil {
		return nicWork{}, fmt.Errorf("%s work for server %s carries no NIC", w.Kind, w.Server)
	}
	id, nic, change := w.Server, *w.NIC, Driver.AttachNIC
	if w.Kind == WorkDetachNIC || w.Kind == WorkUnplugNIC {
		change = Driver.DetachNIC
	}
	j := nicWork{call: func(ctx context.Context, d Driver) error { return change(d, ctx, id, nic) }}
	switch w.Kind {
	case WorkAttachNIC:
		j.ok, j.fail, j.doing, j.port = server.ReportInterfaceAttached, server.ReportInterfaceFailed, "attach the interface", nic.PortID
	case WorkDetachNIC:
		j.ok, j.fail, j.doing, j.port = server.ReportInterfaceDetached, server.ReportInterfaceFailed, "detach the interface", nic.PortID
	default:
		j.call = func(ctx context.Context, d Driver) error {
			if err := change(d, ctx, id, nic); !errors.Is(err, ErrNoServer) {
				return err
			}
			return nil // the server is gone, and its NICs with it
		}
	}
	return j, nil
}

// nicWork is one piece of interface work: the driver call, the report
// kinds of its success and failure (none: not reported), what it does in
// the user's words, and the port its report names.
type nicWork struct {
	call     func(context.Context, Driver) error
	ok, fail server.ReportKind
	doing    string
	port     string
}

// plain makes a failure's detail storable: control characters (a
// hypervisor's multi-line message) become spaces, and it is cut to n bytes
// on a rune boundary.
func plain(s string, n int) string {
	b := []rune(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?")))
	out := string(b)
	for len(out) > n {
		b = b[:len(b)-1]
		out = string(b)
	}
	return out
}
