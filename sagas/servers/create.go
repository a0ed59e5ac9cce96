package servers

import (
	"fmt"

	"github.com/keel-cloud/keel/domain/operation"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/sagas/runner"
)

// Create builds a server: network (when it asked for networks: a port on
// each, an effect, recorded as its NICs), schedule (placement, an effect),
// then spawn (the host's agent reports). A spawn that failed on a host goes
// back to schedule; a failed build gives its claim, group place and ports
// back. A host's
// own account of a failure (the event's detail) goes to the operation
// beside the reason, for admins.
func Create(t Timeouts) runner.Workflow {
	return runner.Workflow{
		Name:      "server create",
		Kinds:     []string{KindCreate},
		Events:    []string{server.TypeCreated, server.TypeNICsSet, server.TypeScheduled, server.TypeSpawned, server.TypeSpawnFailed, server.TypeFailed},
		Operation: operationOf,
		React:     func(s runner.State, e runner.Event) []runner.Command { return reactCreate(t, s, e) },
	}
}

func reactCreate(t Timeouts, s runner.State, e runner.Event) []runner.Command {
	sid, opID := e.AggregateID, e.CorrelationID
	switch ev := e.Event.(type) {
	case *server.Created:
		steps := []operation.StepSpec{{Name: StepSchedule, Timeout: t.Schedule}, {Name: StepSpawn, Timeout: t.Spawn}}
		if len(ev.Networks) > 0 {
			steps = append([]operation.StepSpec{{Name: StepNetwork, Timeout: t.Network}}, steps...)
		}
		return begin(s, ev.Operation, KindCreate, sid, steps...)
	case *server.NICsSet:
		return completeOrFinish(s, ev.Operation, StepNetwork)
	case *server.Scheduled:
		return completeOrFinish(s, ev.Operation, StepSchedule)
	case *server.Spawned:
		return completeOrFinish(s, opID, StepSpawn)
	case *server.SpawnFailed:
		reason := fmt.Sprintf("spawn on %s failed (%s); trying another host", ev.Host, ev.Reason)
		return concat(release(s, opID, ev.Host, sid, "spawn failed: "+ev.Reason),
			[]runner.Command{op(opID, fmt.Sprintf("rewind/%d", ev.Attempt), operation.Rewind{From: StepSpawn, To: StepSchedule, Reason: reason, Detail: ev.Detail, At: s.Now})})
	case *server.Failed:
		return concat(release(s, ev.Operation, ev.Host, sid, "build failed"), leave(s, ev.Operation), releasePorts(s, ev.Operation),
			finish(s, ev.Operation, ev.Reason, ev.Detail, compensatedCreate(s, ev.Host)))
	case *operation.Began:
		return supersededAtBegin(s)
	case *operation.StepStarted:
		switch ev.Step {
		case StepNetwork:
			return []runner.Command{{Cmd: runner.Effect{Name: EffectPorts}, Operation: e.AggregateID, What: EffectPorts}}
		case StepSchedule:
			return []runner.Command{{Cmd: runner.Effect{Name: EffectPlace}, Operation: e.AggregateID, What: EffectPlace}}
		}
		// Events of one operation can meet the saga out of order: the host's
		// report (keyed by its server) and the schedule step's end (keyed by
		// the operation) are handled by different workers, which after a
		// restart find both in the log at once. A spawn step that starts on
		// a server already built is done.
		if ev.Step == StepSpawn && built(s) {
			return completeOrFinish(s, string(s.Op.ID), StepSpawn)
		}
	case *operation.StepFailed:
		return compensate(s, server.Fail{Reason: ev.Reason, Operation: string(s.Op.ID), At: s.Now}, ev.Reason)
	}
	return nil
}

// built tells whether the server of the operation was spawned already.
func built(s runner.State) bool {
	sv := s.Server
	return sv.Exists && sv.Operation == string(s.Op.ID) && sv.Task == server.NoTask &&
		(sv.Status == server.StatusActive || sv.Status == server.StatusStopped)
}

// compensatedCreate names the steps a failed build undid: a build that
// reached a host gave its spawn and its claim back; one that asked for
// networks deleted its ports.
func compensatedCreate(s runner.State, host string) []string {
	var out []string
	if host != "" {
		out = append(out, StepSpawn, StepSchedule)
	}
	if len(s.Server.Networks) > 0 {
		out = append(out, StepNetwork)
	}
	return out
}
