package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/catalog"
	"github.com/keel-cloud/keel/domain/host"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/eventlog"
)

// Agent runs the hosts of one agent process.
type Agent struct {
	// Name identifies the agent process; its durable subscription is named
	// after it (agent-<name>-v1).
	Name string
	App  *commands.App
	// Events delivers the server commits the hosts act on.
	Events eventlog.Subscriber
	Hosts  []Host
	Log    *slog.Logger
	// CallTimeout bounds one driver call.
	CallTimeout time.Duration
	// Publish sends heartbeats and the goodbye (core NATS); nil sends none.
	Publish func(subject string, data []byte) error
	// Respond, when set, answers requests on a subject (core NATS
	// request/reply) until the returned stop is called: the hosts' console
	// logs are read through it.
	Respond func(subject string, answer func(data []byte) []byte) (stop func(), err error)
	// Flush, when set, waits until what Publish sent has reached the
	// server, so that the goodbye is not lost when the process exits.
	Flush func() error
	// HeartbeatEvery is the heartbeat period (default 5 s).
	HeartbeatEvery time.Duration
	// SyncEvery is the period of the observed-state sync (see Sync); zero:
	// no sync (simulated fleets, whose hosts cannot drift).
	SyncEvery time.Duration
	// Secrets opens the admin passwords sealed in server.created (nil: a
	// server with one fails to spawn here, saying why). For now it holds
	// the control plane's own key; per-host trust will have keel serve
	// send each host its work instead.
	Secrets Opener

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
				if err := a.register(ctx, h); err != nil {
					select {
					case errs <- err:
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

func (a *Agent) register(ctx context.Context, h Host) error {
	id := commands.HostID(h.Info.Name)
	spec := host.Spec{Name: h.Info.Name, Driver: h.Info.Driver, Hypervisor: h.Info.Hypervisor, CPUModel: h.Info.CPUModel, CPUFeatures: h.Info.CPUFeatures,
		VCPUs: h.Info.VCPUs, RAMMiB: h.Info.RAMMiB, DiskGiB: h.Info.DiskGiB, Traits: h.Info.Traits}
	meta := commands.Meta{CommandID: commands.DeriveID("register", h.Info.Name, fmt.Sprint(spec)), Actor: domain.Actor{User: "agent:" + a.Name}}
	if _, err := a.App.Hosts.Handle(ctx, id, host.Register{ID: id, Spec: spec, Ratios: h.Info.Ratios, At: time.Now().UTC()}, meta); err != nil {
		return fmt.Errorf("register host %s: %w", h.Info.Name, err)
	}
	return nil
}

// Run follows server events until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	a.byName = map[string]Driver{}
	for _, h := range a.Hosts {
		a.byName[h.Info.Name] = h.Driver
	}
	if a.CallTimeout == 0 {
		a.CallTimeout = 5 * time.Minute
	}
	if err := a.Register(ctx); err != nil {
		return err
	}
	if a.Publish != nil {
		done := make(chan struct{})
		go func() { defer close(done); a.heartbeat(ctx) }()
		defer func() { <-done }() // the goodbye is sent before Run returns
	}
	if a.Respond != nil {
		for _, h := range a.Hosts {
			stop, err := a.Respond(ConsoleSubject+commands.HostID(h.Info.Name), func(data []byte) []byte {
				cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				return a.answerConsole(cctx, h, data)
			})
			if err != nil {
				return fmt.Errorf("answer console-log requests of host %s: %w", h.Info.Name, err)
			}
			defer stop()
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
	sub := eventlog.Subscription{
		Name:           Durable(a.Name),
		AggregateTypes: []string{server.AggregateType},
		Workers:        64,
		Key:            hostAndServer,
		Handle:         a.handle,
		Log:            a.Log,
	}
	return a.Events.Subscribe(ctx, sub)
}

// Durable is the subscription name of the agent called name.
func Durable(name string) string { return "agent-" + name + "-v1" }

// hostAndServer orders a server's commits per host: the work of one host
// waits for that host's earlier work on the server, never for another
// host's. A spawn that hangs on one host must not hold up the build's next
// attempt elsewhere.
func hostAndServer(env domain.Envelope) string {
	var ev struct {
		Host string `json:"host"`
	}
	if len(env.Events) == 0 {
		return "/" + env.AggregateID
	}
	if err := json.Unmarshal(env.Events[0].Data, &ev); err != nil {
		// Keyed by the server alone: handle decodes the commit again and
		// reports why it cannot.
		return "/" + env.AggregateID
	}
	return ev.Host + "/" + env.AggregateID
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
					if err := a.Publish(GoodbyeSubject+commands.HostID(h.Info.Name), []byte(h.Info.Name)); err != nil {
						a.Log.Warn("goodbye", "host", h.Info.Name, "err", err)
					}
					continue
				}
				if sick[h.Info.Name] {
					a.Log.Info("hypervisor answers again: host up", "host", h.Info.Name)
					delete(sick, h.Info.Name)
				}
			}
			if err := a.Publish(HeartbeatSubject+commands.HostID(h.Info.Name), []byte(h.Info.Name)); err != nil {
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
		if err := a.Publish(GoodbyeSubject+commands.HostID(h.Info.Name), []byte(h.Info.Name)); err != nil {
			a.Log.Warn("goodbye", "host", h.Info.Name, "err", err)
		}
	}
	if a.Flush != nil {
		if err := a.Flush(); err != nil {
			a.Log.Warn("goodbye", "err", err)
		}
	}
}

// HeartbeatSubject is where heartbeats go: keel.heartbeat.<host id>.
const HeartbeatSubject = "keel.heartbeat."

// GoodbyeSubject is where an agent that stops cleanly says so, once per
// host: keel.goodbye.<host id>. The host is down from then on, until its
// next heartbeat.
const GoodbyeSubject = "keel.goodbye."

func (a *Agent) handle(ctx context.Context, env domain.Envelope) error {
	events, err := catalog.Decode(env)
	if err != nil {
		return err
	}
	for i, ev := range events {
		if err := a.act(ctx, env, i, ev); err != nil {
			return err
		}
	}
	return nil
}

// act performs what one event asks of a managed host, then reports.
func (a *Agent) act(ctx context.Context, env domain.Envelope, i int, ev domain.Event) error {
	id := env.AggregateID
	var hostName string
	var call func(context.Context, Driver) error
	var ok, fail server.ReportKind
	doing := "clean up the server" // what the call does, in the user's words
	switch e := ev.(type) {
	case *server.Scheduled:
		hostName, ok, fail, doing = e.Host, server.ReportSpawned, server.ReportSpawnFailed, "build the server"
		st, _, err := a.App.Servers.Load(ctx, id)
		if err != nil {
			return err
		}
		if st.Task != server.Spawning || st.Host != e.Host {
			return nil // a late delivery: the build moved on (failed, deleted, or placed elsewhere)
		}
		im, _, err := a.App.Images.Load(ctx, st.ImageID)
		if err != nil {
			return err
		}
		spec := ServerSpec{ID: id, Name: st.Name, VCPUs: st.Flavor.VCPUs, RAMMiB: st.Flavor.RAMMiB, DiskGiB: st.Flavor.DiskGiB, ImageID: st.ImageID,
			Image:    ImageRef{ID: string(im.ID), Object: im.Object, SHA256: im.SHA256, Size: im.Size, Format: im.Spec.DiskFormat},
			UserData: st.UserData, DataDisksGiB: st.DataDisksGiB}
		if st.PublicKey != "" {
			spec.SSHKeys = []string{st.PublicKey}
		}
		pw, err := a.openPassword(st)
		call = func(ctx context.Context, d Driver) error {
			if err != nil {
				return err // reported as a failed spawn, with the reason
			}
			spec.AdminPassword = pw
			return d.Spawn(ctx, spec)
		}
	case *server.StartRequested:
		hostName, ok, fail, doing = e.Host, server.ReportStarted, server.ReportActionFailed, "start the server"
		call = func(ctx context.Context, d Driver) error { return d.PowerOn(ctx, id) }
	case *server.StopRequested:
		hostName, ok, fail, doing = e.Host, server.ReportStopped, server.ReportActionFailed, "stop the server"
		call = func(ctx context.Context, d Driver) error { return d.PowerOff(ctx, id) }
	case *server.RebootRequested:
		hostName, ok, fail, doing = e.Host, server.ReportRebooted, server.ReportActionFailed, "reboot the server"
		hard := e.Hard
		call = func(ctx context.Context, d Driver) error { return d.Reboot(ctx, id, hard) }
	case *server.DeleteRequested:
		hostName, ok, fail = e.Host, server.ReportDestroyed, ""
		call = func(ctx context.Context, d Driver) error { return d.Destroy(ctx, id) }
	case *server.SpawnFailed:
		hostName = e.Host // the build moves on: clean up whatever it left here
		call = func(ctx context.Context, d Driver) error { return d.Destroy(ctx, id) }
	case *server.Failed:
		hostName = e.Host // compensation: clean up whatever the build left
		call = func(ctx context.Context, d Driver) error { return d.Destroy(ctx, id) }
	case *server.Deleted:
		if !e.Forced {
			return nil
		}
		hostName = e.Host // the control plane let go; make sure nothing is left
		call = func(ctx context.Context, d Driver) error { return d.Destroy(ctx, id) }
	default:
		return nil
	}
	d, mine := a.byName[hostName]
	if !mine || hostName == "" {
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
		a.Log.Info("host call failed", "host", hostName, "server", id, "err", err)
		kind, reason, detail = fail, Reason(err, doing), plain(err.Error(), server.MaxReportDetail)
		if fail == "" {
			return fmt.Errorf("destroy server %s on %s: %w", id, hostName, err) // retried
		}
	}
	if kind == "" {
		return nil
	}
	return a.report(ctx, env, i, hostName, kind, reason, detail)
}

// Opener opens secrets sealed by keel serve (package secrets).
type Opener interface {
	Open(sealed []byte, id string) ([]byte, error)
}

// openPassword opens a server's sealed admin password; a failure is a
// Failure whose reason the user sees on the failed build.
func (a *Agent) openPassword(st server.State) ([]byte, error) {
	if len(st.AdminPasswordSealed) == 0 {
		return nil, nil
	}
	if a.Secrets == nil {
		return nil, Failf(errors.New("no secrets key"), "this host's agent has no secrets key to open the admin password (keel agent --secrets-key)")
	}
	pw, err := a.Secrets.Open(st.AdminPasswordSealed, string(st.ID))
	if err != nil {
		return nil, Failf(err, "this host's agent could not open the admin password: its secrets key is not keel serve's")
	}
	return pw, nil
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

func (a *Agent) report(ctx context.Context, env domain.Envelope, i int, hostName string, kind server.ReportKind, reason, detail string) error {
	meta := commands.Meta{
		CommandID:     commands.DeriveID("report", fmt.Sprint(env.Sequence), fmt.Sprint(i)),
		Actor:         domain.Actor{User: "agent:" + a.Name},
		CorrelationID: env.CorrelationID,
		CausationID:   env.CommandID,
	}
	_, err := a.App.Servers.Handle(ctx, env.AggregateID, server.Report{Host: hostName, Kind: kind, Reason: reason, Detail: detail, At: time.Now().UTC()}, meta)
	if k := domain.KindOf(err); k == domain.Conflict || k == domain.NotFound {
		a.Log.Debug("report no longer applies", "server", env.AggregateID, "kind", kind, "why", err)
		return nil
	}
	return err
}
