package servers

import (
	"github.com/keel-cloud/keel/domain/operation"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/sagas/runner"
)

// action is one power action: its kind, its one step, and the event that
// requests and the event that completes it.
type action struct {
	kind, step           string
	requested, completed string
}

var actions = []action{
	{KindStart, StepPowerOn, server.TypeStartRequested, server.TypeStarted},
	{KindStop, StepPowerOff, server.TypeStopRequested, server.TypeStopped},
	{KindReboot, StepReboot, server.TypeRebootRequested, server.TypeRebooted},
}

// Actions starts, stops and reboots a server: one step each, done when the
// host reports; a failed or overdue step aborts the server's task.
func Actions(t Timeouts) runner.Workflow {
	w := runner.Workflow{Name: "server actions", Events: []string{server.TypeActionFailed}, Operation: operationOf,
		React: func(s runner.State, e runner.Event) []runner.Command { return reactAction(t, s, e) }}
	for _, a := range actions {
		w.Kinds = append(w.Kinds, a.kind)
		w.Events = append(w.Events, a.requested, a.completed)
	}
	return w
}

// answeredAtBegin ends an operation whose host answered before the saga
// began it: after a restart the request that begins it can be redelivered
// after the host's report was handled (see Create). The server's task is
// over; its reason says whether it failed.
func answeredAtBegin(s runner.State) []runner.Command {
	sv, opID := s.Server, string(s.Op.ID)
	if !sv.Exists || sv.Operation != opID || sv.Task != server.NoTask || s.Op.Terminal() {
		return nil
	}
	if sv.Reason != "" {
		return finish(s, opID, sv.Reason, "", nil)
	}
	for _, a := range actions {
		if a.kind == s.Op.Kind {
			return completeOrFinish(s, opID, a.step)
		}
	}
	return nil
}

func reactAction(t Timeouts, s runner.State, e runner.Event) []runner.Command {
	switch ev := e.Event.(type) {
	case *server.ActionFailed:
		return finish(s, e.CorrelationID, ev.Reason, ev.Detail, nil)
	case *operation.Began:
		if out := supersededAtBegin(s); out != nil {
			return out
		}
		return answeredAtBegin(s)
	case *operation.StepFailed:
		return compensate(s, server.AbortTask{Reason: ev.Reason, At: s.Now}, ev.Reason)
	}
	for _, a := range actions {
		switch e.Event.EventType() {
		case a.requested:
			return begin(s, operationOf(e), a.kind, e.AggregateID, operation.StepSpec{Name: a.step, Timeout: t.Action})
		case a.completed:
			return completeOrFinish(s, e.CorrelationID, a.step)
		}
	}
	return nil
}
