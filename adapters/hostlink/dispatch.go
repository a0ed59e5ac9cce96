package hostlink

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/keel-cloud/keel/adapters/agent"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/catalog"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/eventlog"
)

// DispatcherDurable is the subscription the dispatcher follows server
// events with.
const DispatcherDurable = "dispatch-hosts-v1"

// Opener opens the admin passwords keel serve sealed in server.created
// (package secrets).
type Opener interface {
	Open(sealed []byte, id string) ([]byte, error)
}

// Dispatcher turns server events into the work of the host they are
// addressed to, in keel serve: the host reads its own work and nothing
// else of the log.
type Dispatcher struct {
	App     *commands.App
	JS      jetstream.JetStream
	Keys    *Keys
	Secrets Opener // nil: builds of servers with a password fail, saying why
	Log     *slog.Logger
}

// Subscription is the dispatcher's durable subscription to server events:
// a server's work is published in log order.
func (d *Dispatcher) Subscription() eventlog.Subscription {
	return eventlog.Subscription{Name: DispatcherDurable, AggregateTypes: []string{server.AggregateType}, Workers: 64,
		Handle: d.Handle, Log: d.Log}
}

// Handle publishes the work one commit asks of hosts.
func (d *Dispatcher) Handle(ctx context.Context, env domain.Envelope) error {
	events, err := catalog.Decode(env)
	if err != nil {
		return err
	}
	for i, ev := range events {
		w, err := d.work(ctx, env, i, ev)
		if err != nil {
			return err
		}
		if w == nil {
			continue
		}
		if err := d.publish(ctx, w); err != nil {
			return err
		}
	}
	return nil
}

// work is what event i of env asks of a host, or nil.
func (d *Dispatcher) work(ctx context.Context, env domain.Envelope, i int, ev domain.Event) (*agent.Work, error) {
	w := &agent.Work{Seq: env.Sequence, Index: i, Server: env.AggregateID, Correlation: env.CorrelationID, Causation: env.CommandID}
	switch e := ev.(type) {
	case *server.Scheduled:
		w.Host, w.Kind = e.Host, agent.WorkSpawn
	case *server.StartRequested:
		w.Host, w.Kind = e.Host, agent.WorkStart
	case *server.StopRequested:
		w.Host, w.Kind = e.Host, agent.WorkStop
	case *server.RebootRequested:
		w.Host, w.Kind, w.Hard = e.Host, agent.WorkReboot, e.Hard
	case *server.DeleteRequested:
		w.Host, w.Kind = e.Host, agent.WorkDelete
	case *server.InterfacePortSet:
		w.Host, w.Kind, w.NIC = e.Host, agent.WorkAttachNIC, &agent.NIC{PortID: e.NIC.Port, MAC: e.NIC.MAC}
	case *server.InterfaceDetachRequested:
		w.Host, w.Kind, w.NIC = e.Host, agent.WorkDetachNIC, &agent.NIC{PortID: e.NIC.Port, MAC: e.NIC.MAC}
	case *server.InterfaceFailed:
		if e.MAC == "" {
			return nil, nil
		}
		// Compensation: the host may have done it (or may yet, late),
		// so what the server records is made so again.
		w.Host, w.Kind, w.NIC = e.Host, agent.WorkUnplugNIC, &agent.NIC{PortID: e.Port, MAC: e.MAC}
		if e.Task == server.DetachingInterface {
			w.Kind = agent.WorkReplugNIC
		}
	case *server.SpawnFailed:
		w.Host, w.Kind = e.Host, agent.WorkCleanup // the build moves on: clean up whatever it left there
	case *server.Failed:
		w.Host, w.Kind = e.Host, agent.WorkCleanup // compensation
	case *server.Deleted:
		if !e.Forced {
			return nil, nil
		}
		w.Host, w.Kind = e.Host, agent.WorkCleanup // the control plane let go; make sure nothing is left
	default:
		return nil, nil
	}
	if w.Host == "" {
		return nil, nil
	}
	// A late delivery, or the log read again from its start by a new
	// dispatcher (an upgrade), must not build, stop or reboot again.
	st, asked, err := d.asked(ctx, *w)
	if err != nil || !asked {
		return nil, err
	}
	if w.Kind == agent.WorkSpawn {
		if err := d.spawnSpec(ctx, w, st); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// taskOf is the server task each kind of work answers (clean-ups answer
// none: destroying what is gone does nothing, so they are always asked).
var taskOf = map[agent.WorkKind]server.Task{agent.WorkSpawn: server.Spawning, agent.WorkStart: server.PoweringOn,
	agent.WorkStop: server.PoweringOff, agent.WorkReboot: server.RebootTask, agent.WorkDelete: server.DeleteTask,
	agent.WorkAttachNIC: server.AttachingInterface, agent.WorkDetachNIC: server.DetachingInterface}

// asked tells whether w is still asked of its host: the server's task is
// still the one w answers, on that host (and, for interface work, on the
// same port). It returns the server as loaded.
func (d *Dispatcher) asked(ctx context.Context, w agent.Work) (server.State, bool, error) {
	task, ok := taskOf[w.Kind]
	if !ok {
		return server.State{}, true, nil
	}
	st, _, err := d.App.Servers.Load(ctx, w.Server)
	if err != nil {
		return st, false, err
	}
	if w.NIC != nil && w.NIC.PortID != st.Pending.Port {
		return st, false, nil
	}
	return st, st.Task == task && st.Host == w.Host, nil
}

// StillAsked tells whether a piece of work is still asked of its host when
// it is handed out (Forwarder.StillAsked): a host that was away for a long
// time must not run the stop or the reboot of an operation that ended
// meanwhile.
func (d *Dispatcher) StillAsked(ctx context.Context, w agent.Work) (bool, error) {
	_, asked, err := d.asked(ctx, w)
	return asked, err
}

// spawnSpec fills in server st to build, its password sealed to the host.
func (d *Dispatcher) spawnSpec(ctx context.Context, w *agent.Work, st server.State) error {
	im, _, err := d.App.Images.Load(ctx, st.ImageID)
	if err != nil {
		return err
	}
	w.Spec = &agent.ServerSpec{ID: w.Server, Name: st.Name, VCPUs: st.Flavor.VCPUs, RAMMiB: st.Flavor.RAMMiB, DiskGiB: st.Flavor.DiskGiB, ImageID: st.ImageID,
		Image:    agent.ImageRef{ID: string(im.ID), Object: im.Object, SHA256: im.SHA256, Size: im.Size, Format: im.Spec.DiskFormat},
		UserData: st.UserData, DataDisksGiB: st.DataDisksGiB}
	for _, n := range st.NICs {
		w.Spec.NICs = append(w.Spec.NICs, agent.NIC{PortID: n.Port, MAC: n.MAC})
	}
	if st.PublicKey != "" {
		w.Spec.SSHKeys = []string{st.PublicKey}
	}
	if len(st.AdminPasswordSealed) > 0 {
		d.sealPassword(w, st)
	}
	return nil
}

// sealPassword opens the server's admin password with keel serve's key and
// seals it to the host's own curve key, with a key made for this message.
// What fails is said in the work, and the build fails with it.
func (d *Dispatcher) sealPassword(w *agent.Work, st server.State) {
	recipient, _ := d.Keys.sealKey(commands.HostID(w.Host))
	fail := func(why string) { w.Sealer, w.SealedPassword, w.PasswordError = "", nil, why }
	if d.Secrets == nil || recipient == "" {
		fail("keel serve has no key to seal it to this host")
		return
	}
	pw, err := d.Secrets.Open(st.AdminPasswordSealed, string(st.ID))
	if err != nil {
		fail("keel serve could not open it with its secrets key")
		return
	}
	sender, err := nkeys.CreateCurveKeys()
	if err == nil {
		w.SealedPassword, err = sender.Seal(pw, recipient)
	}
	if err == nil {
		w.Sealer, err = sender.PublicKey()
	}
	clear(pw)
	if err != nil {
		fail("keel serve could not seal it")
	}
}

func (d *Dispatcher) publish(ctx context.Context, w *agent.Work) error {
	return d.publishAs(ctx, w, fmt.Sprintf("%d-%d", w.Seq, w.Index))
}

// publishAs publishes w with the message id id (JetStream drops a second
// message of one id within the duplicate window).
func (d *Dispatcher) publishAs(ctx context.Context, w *agent.Work, id string) error {
	hostID := commands.HostID(w.Host)
	_, sim := d.Keys.sealKey(hostID)
	data, err := json.Marshal(w)
	if err != nil {
		return err
	}
	_, err = d.JS.Publish(ctx, WorkSubject(hostID, sim), data, jetstream.WithMsgID(id))
	if err != nil {
		return fmt.Errorf("publish the work of host %s: %w", w.Host, err)
	}
	return nil
}
