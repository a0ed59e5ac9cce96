// Package servers holds the server workflows (create, start/stop/reboot,
// delete), each a pure reaction from the operation and server state and an
// event to the commands that move the operation on, in a file of its own.
//
// It must not load aggregates, read the read model or send anything: the
// saga runner (sagas/runner) does that. Placement is named here as an
// effect ("place") and carried out by the sagas package.
package servers

import (
	"fmt"
	"time"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/host"
	"github.com/keel-cloud/keel/domain/operation"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/domain/servergroup"
	"github.com/keel-cloud/keel/sagas/runner"
)

// Operation kinds and their steps.
const (
	KindCreate = "server.create"
	KindStart  = "server.start"
	KindStop   = "server.stop"
	KindReboot = "server.reboot"
	KindDelete = "server.delete"

	StepNetwork  = "network"
	StepSchedule = "schedule"
	StepSpawn    = "spawn"
	StepPowerOn  = "power_on"
	StepPowerOff = "power_off"
	StepReboot   = "reboot"
	StepDestroy  = "destroy"
)

// Effects the runner carries out: placement; making the ports of a
// server's networks (and recording them as its NICs); deleting the ports a
// server owns (its build failed, or it was deleted). The interface
// effects are in interfaces.go.
const (
	EffectPlace        = "place"
	EffectPorts        = "ports"
	EffectReleasePorts = "release_ports"
)

// Timeouts bound each step.
type Timeouts struct {
	Network  time.Duration
	Schedule time.Duration
	Spawn    time.Duration
	Action   time.Duration
	Destroy  time.Duration
}

// Workflows returns every server workflow; adding one is adding a file and
// a line here.
func Workflows(t Timeouts) []runner.Workflow {
	return []runner.Workflow{Create(t), Actions(t), Delete(t), Interfaces(t)}
}

// operationOf names the operation a server event concerns: the one it
// carries, else its commit's correlation.
func operationOf(e runner.Event) string {
	switch ev := e.Event.(type) {
	case *server.Created:
		return ev.Operation
	case *server.Scheduled:
		return ev.Operation
	case *server.Failed:
		return ev.Operation
	case *server.NICsSet:
		return ev.Operation
	case *server.StartRequested:
		return ev.Operation
	case *server.StopRequested:
		return ev.Operation
	case *server.RebootRequested:
		return ev.Operation
	case *server.DeleteRequested:
		return ev.Operation
	case *server.InterfaceAttachRequested:
		return ev.Operation
	case *server.InterfacePortSet:
		return ev.Operation
	case *server.InterfaceAttached:
		return ev.Operation
	case *server.InterfaceDetachRequested:
		return ev.Operation
	case *server.InterfaceDetached:
		return ev.Operation
	case *server.InterfaceFailed:
		return ev.Operation
	}
	return e.CorrelationID
}

var (
	// refusals are what an operation command meets when the operation moved on.
	refusals = []domain.ErrorKind{domain.Conflict, domain.NotFound}
	anyKind  = []domain.ErrorKind{domain.Invalid, domain.Conflict, domain.NotFound}
)

// op is a command to an operation; a refusal means it moved on.
func op(opID, what string, cmd operation.Command) runner.Command {
	return runner.Command{ID: opID, Cmd: cmd, Operation: opID, What: what, Tolerate: refusals}
}

// begin starts an operation; it is refused (quietly) when it already began.
func begin(s runner.State, opID, kind, sid string, steps ...operation.StepSpec) []runner.Command {
	return []runner.Command{op(opID, "begin", operation.Begin{ID: operation.ID(opID), Project: s.Server.Project, Kind: kind,
		ResourceType: server.AggregateType, ResourceID: sid, Steps: steps, At: s.Now})}
}

// supersededAtBegin ends an operation that began after its server moved
// on: saga workers are keyed by operation, so a delete may have superseded
// it before it began, and it ends at once instead of waiting for a deadline.
func supersededAtBegin(s runner.State) []runner.Command {
	opID := string(s.Op.ID)
	if s.Op.Terminal() || s.Server.Operation == opID {
		return nil
	}
	reason := fmt.Sprintf("superseded by operation %s (server is %s)", s.Server.Operation, s.Server.Status)
	if s.Server.Desired == server.WantDeleted {
		reason = fmt.Sprintf("superseded by delete (operation %s)", s.Server.Operation)
	}
	return finish(s, opID, reason, "", nil)
}

// completeOrFinish completes a step of a running operation; when the
// operation is compensating instead, the event is the end of compensation.
// s.Op must be the operation opID.
func completeOrFinish(s runner.State, opID, step string) []runner.Command {
	st := s.Op
	if opID == "" || !st.Exists || st.Terminal() {
		return nil
	}
	if st.Status == operation.Running && st.CurrentStep() == step {
		// Steps can run again after a rewind: the attempt keeps ids apart.
		return []runner.Command{op(opID, fmt.Sprintf("%s/done/%d", step, st.Retries), operation.CompleteStep{Step: step, At: s.Now})}
	}
	if st.Status == operation.Compensating {
		return finish(s, opID, "", "", nil)
	}
	return nil
}

// finish ends an operation as failed: reason in the user's words, detail
// (the host's own account, or "") for admins.
func finish(s runner.State, opID, reason, detail string, compensated []string) []runner.Command {
	if opID == "" {
		return nil
	}
	return []runner.Command{op(opID, "finish", operation.Finish{Reason: reason, Detail: detail, Compensated: compensated, At: s.Now})}
}

// compensate undoes what a failed operation did, through its server; when
// the server moved on (deleted, superseded) there is nothing left to undo.
func compensate(s runner.State, cmd server.Command, reason string) []runner.Command {
	if s.Op.Terminal() {
		return nil
	}
	opID := string(s.Op.ID)
	return []runner.Command{{ID: s.Op.ResourceID, Cmd: cmd, Operation: opID, What: "compensate",
		IfRefused: finish(s, opID, reason, "", nil)}}
}

// release gives a server's claim on a host back (nothing when there is none).
func release(s runner.State, corr, hostName, sid, reason string) []runner.Command {
	if hostName == "" {
		return nil
	}
	return []runner.Command{{ID: hostName, Cmd: host.Release{Server: sid, Reason: reason, At: s.Now},
		Operation: corr, What: "release/" + hostName + "/" + sid, Tolerate: []domain.ErrorKind{domain.NotFound}}}
}

// releasePorts deletes the ports a server owns (those of its networks, its
// NICs, an attach that never finished; none when it has none): an effect,
// since a port's delete also gives its address and quota back.
func releasePorts(s runner.State, corr string) []runner.Command {
	if !s.Server.HasPorts() {
		return nil
	}
	return []runner.Command{{Cmd: runner.Effect{Name: EffectReleasePorts}, Operation: corr, What: EffectReleasePorts}}
}

// leave takes a server out of its group (deleted, or its build failed).
func leave(s runner.State, corr string) []runner.Command {
	g := s.Server.Hints.ServerGroup
	if g == "" {
		return nil
	}
	sid := string(s.Server.ID)
	return []runner.Command{{ID: g, Cmd: servergroup.RemoveMember{Server: sid, At: s.Now},
		Operation: corr, What: "leave/" + sid, Tolerate: anyKind}}
}

func concat(cs ...[]runner.Command) []runner.Command {
	var out []runner.Command
	for _, c := range cs {
		out = append(out, c...)
	}
	return out
}
