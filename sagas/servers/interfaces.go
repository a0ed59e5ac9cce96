package servers

import (
	"github.com/keel-cloud/keel/domain/operation"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/sagas/runner"
)

// Interface operation kinds, their steps and effects: making the port of
// an attach (and recording it on the server), deleting the port of an
// attach that failed (by the id derived from the operation), deleting the
// port a detach unplugged (named by the effect's argument).
const (
	KindAttachInterface = "server.attach_interface"
	KindDetachInterface = "server.detach_interface"

	StepAttach = "attach"
	StepDetach = "detach"

	EffectInterfacePort        = "interface_port"
	EffectReleaseInterfacePort = "release_interface_port"
	EffectDeletePort           = "delete_port"
)

// Interfaces attaches and detaches a server's NICs. Attach: network (the
// port is made, an effect, and recorded on the server), then attach (the
// host plugs it and reports). Detach: detach (the host unplugs it and
// reports), and the port is deleted before the step is done. A failure or
// a deadline ends the server's task; a failed attach deletes its port.
func Interfaces(t Timeouts) runner.Workflow {
	return runner.Workflow{
		Name:  "server interfaces",
		Kinds: []string{KindAttachInterface, KindDetachInterface},
		Events: []string{server.TypeInterfaceAttachRequested, server.TypeInterfacePortSet, server.TypeInterfaceAttached,
			server.TypeInterfaceDetachRequested, server.TypeInterfaceDetached, server.TypeInterfaceFailed},
		Operation: operationOf,
		React:     func(s runner.State, e runner.Event) []runner.Command { return reactInterface(t, s, e) },
	}
}

func reactInterface(t Timeouts, s runner.State, e runner.Event) []runner.Command {
	sid := e.AggregateID
	switch ev := e.Event.(type) {
	case *server.InterfaceAttachRequested:
		return begin(s, ev.Operation, KindAttachInterface, sid,
			operation.StepSpec{Name: StepNetwork, Timeout: t.Network}, operation.StepSpec{Name: StepAttach, Timeout: t.Action})
	case *server.InterfaceDetachRequested:
		return begin(s, ev.Operation, KindDetachInterface, sid, operation.StepSpec{Name: StepDetach, Timeout: t.Action})
	case *server.InterfacePortSet:
		if s.Op.Status != operation.Running || s.Op.CurrentStep() != StepNetwork {
			return nil // redelivered, or compensating: the failure releases the port
		}
		return completeOrFinish(s, ev.Operation, StepNetwork)
	case *server.InterfaceAttached:
		return completeOrFinish(s, ev.Operation, StepAttach)
	case *server.InterfaceDetached:
		del := runner.Command{Cmd: runner.Effect{Name: EffectDeletePort, Arg: ev.Port}, Operation: ev.Operation, What: EffectDeletePort}
		return append([]runner.Command{del}, completeOrFinish(s, ev.Operation, StepDetach)...)
	case *server.InterfaceFailed:
		if ev.Task != server.AttachingInterface {
			return finish(s, ev.Operation, ev.Reason, ev.Detail, nil)
		}
		rel := runner.Command{Cmd: runner.Effect{Name: EffectReleaseInterfacePort}, Operation: ev.Operation, What: EffectReleaseInterfacePort}
		return append([]runner.Command{rel}, finish(s, ev.Operation, ev.Reason, ev.Detail, []string{StepNetwork})...)
	case *operation.Began:
		if out := supersededAtBegin(s); out != nil {
			return out
		}
		return detachedAtBegin(s)
	case *operation.StepStarted:
		if ev.Step == StepNetwork {
			return []runner.Command{{Cmd: runner.Effect{Name: EffectInterfacePort}, Operation: e.AggregateID, What: EffectInterfacePort}}
		}
	case *operation.StepFailed:
		return compensate(s, server.AbortTask{Reason: ev.Reason, At: s.Now}, ev.Reason)
	}
	return nil
}

// detachedAtBegin ends a detach whose host answered before the saga began
// it (a redelivery after a restart, see Create): the port was deleted when
// the answer was handled. An attach cannot be answered before it began:
// its port is made by its first step.
func detachedAtBegin(s runner.State) []runner.Command {
	sv, opID := s.Server, string(s.Op.ID)
	if s.Op.Kind != KindDetachInterface || !sv.Exists || sv.Operation != opID || sv.Task != server.NoTask || s.Op.Terminal() {
		return nil
	}
	if sv.Reason != "" {
		return finish(s, opID, sv.Reason, "", nil)
	}
	return completeOrFinish(s, opID, StepDetach)
}
