package servers

import (
	"testing"

	"github.com/keel-cloud/keel/domain/operation"
	"github.com/keel-cloud/keel/domain/server"
)

func TestCreate(t *testing.T) {
	steps := []string{StepSchedule, StepSpawn}
	run(t, []scenario{
		{"created: the operation begins", given{noOperation, onServer(opID, "")},
			fromServer(&server.Created{Operation: opID}),
			[]string{"operation.Begin op-1 op-1/begin"}},
		{"began on its server: nothing more", given{running(KindCreate, StepSchedule, 0, steps...), onServer(opID, "")},
			fromOperation(&operation.Began{}), nil},
		{"began after a delete superseded it: ends at once", given{running(KindCreate, StepSchedule, 0, steps...), deleting("op-del")},
			fromOperation(&operation.Began{}),
			[]string{"operation.Finish op-1 op-1/finish"}},
		{"schedule started: placement runs", given{running(KindCreate, StepSchedule, 0, steps...), onServer(opID, "")},
			fromOperation(&operation.StepStarted{Step: StepSchedule}),
			[]string{"effect place op-1"}},
		{"spawn started: the host's agent acts, the saga waits", given{running(KindCreate, StepSpawn, 0, steps...), spawning(opID)},
			fromOperation(&operation.StepStarted{Step: StepSpawn}), nil},
		{"spawn started on a server built already (its report was handled first): done", given{running(KindCreate, StepSpawn, 0, steps...), onServer(opID, "")},
			fromOperation(&operation.StepStarted{Step: StepSpawn}),
			[]string{"operation.CompleteStep op-1 op-1/spawn/done/0"}},
		{"spawn started on a server another operation moved on: waits", given{running(KindCreate, StepSpawn, 0, steps...), onServer("op-other", "")},
			fromOperation(&operation.StepStarted{Step: StepSpawn}), nil},
		{"scheduled: the schedule step is done", given{running(KindCreate, StepSchedule, 0, steps...), onServer(opID, "")},
			fromServer(&server.Scheduled{Host: "h1", Operation: opID}),
			[]string{"operation.CompleteStep op-1 op-1/schedule/done/0"}},
		{"spawned after a retry: the attempt keeps the ids apart", given{running(KindCreate, StepSpawn, 1, steps...), onServer(opID, "")},
			fromServer(&server.Spawned{Host: "h2"}),
			[]string{"operation.CompleteStep op-1 op-1/spawn/done/1"}},
		{"spawned twice (redelivered): nothing", given{running(KindCreate, "", 0, steps...), onServer(opID, "")},
			fromServer(&server.Spawned{Host: "h1"}), nil},
		{"spawn failed: claim released, back to schedule", given{running(KindCreate, StepSpawn, 0, steps...), onServer(opID, "")},
			fromServer(&server.SpawnFailed{Host: "h1", Reason: "disk full", Attempt: 1}),
			[]string{"host.Release h1 op-1/release/h1/srv-1", "operation.Rewind op-1 op-1/rewind/1"}},
		{"build failed on a host: claim and group place given back", given{running(KindCreate, "", 0, steps...), onServer(opID, "g1")},
			fromServer(&server.Failed{Host: "h1", Reason: "no valid host", Operation: opID}),
			[]string{"host.Release h1 op-1/release/h1/srv-1", "servergroup.RemoveMember g1 op-1/leave/srv-1", "operation.Finish op-1 op-1/finish"}},
		{"build failed before placement: finish only", given{compensating(KindCreate, steps...), onServer(opID, "")},
			fromServer(&server.Failed{Reason: "no valid host", Operation: opID}),
			[]string{"operation.Finish op-1 op-1/finish"}},
		{"step failed (placement failed or a deadline passed): the server fails, or the operation ends if it moved on",
			given{compensating(KindCreate, steps...), onServer(opID, "")},
			fromOperation(&operation.StepFailed{Step: StepSchedule, Reason: "no valid host"}),
			[]string{"server.Fail srv-1 op-1/compensate {else operation.Finish op-1 op-1/finish}"}},
		{"step failed on an ended operation: nothing", given{ended(KindCreate, steps...), onServer(opID, "")},
			fromOperation(&operation.StepFailed{Step: StepSpawn}), nil},
		{"spawned while compensating: compensation is over", given{compensating(KindCreate, steps...), onServer(opID, "")},
			fromServer(&server.Spawned{Host: "h1"}),
			[]string{"operation.Finish op-1 op-1/finish"}},
	})
}

// A host's account of a failure goes to the operation beside the reason:
// with the rewind of a spawn that failed on one host, and with the finish
// of a build that failed on the last.
func TestCreatePassesTheHostsAccount(t *testing.T) {
	const detail = "virDomainCreateWithFlags: /var/lib/keel/srv-1/domain.xml: Permission denied"
	steps := []string{StepSchedule, StepSpawn}
	cs := reactCreate(timeouts, stateOf(given{running(KindCreate, StepSpawn, 0, steps...), onServer(opID, "")}),
		fromServer(&server.SpawnFailed{Host: "h1", Reason: "the hypervisor could not start the server", Attempt: 1, Detail: detail}))
	r := cs[len(cs)-1].Cmd.(operation.Rewind)
	if r.Detail != detail || r.Reason != "spawn on h1 failed (the hypervisor could not start the server); trying another host" {
		t.Fatalf("rewind: %+v", r)
	}
	cs = reactCreate(timeouts, stateOf(given{running(KindCreate, StepSpawn, 2, steps...), onServer(opID, "")}),
		fromServer(&server.Failed{Host: "h3", Reason: "build failed on 3 hosts; last on h3: the hypervisor could not start the server", Operation: opID, Detail: detail}))
	f := cs[len(cs)-1].Cmd.(operation.Finish)
	if f.Detail != detail || f.Reason != "build failed on 3 hosts; last on h3: the hypervisor could not start the server" {
		t.Fatalf("finish: %+v", f)
	}
}

// Failed names what was undone only when the build reached a host.
func TestCreateFailedCompensates(t *testing.T) {
	s := given{compensating(KindCreate, StepSchedule, StepSpawn), onServer(opID, "")}
	cs := reactCreate(timeouts, stateOf(s), fromServer(&server.Failed{Host: "h1", Reason: "boom", Operation: opID}))
	f := cs[len(cs)-1].Cmd.(operation.Finish)
	if f.Reason != "boom" || len(f.Compensated) != 2 || f.Compensated[0] != StepSpawn {
		t.Fatalf("finish: %+v", f)
	}
}

// spawning is a server placed on h1 whose host has not reported yet.
func spawning(op string) server.State {
	s := onServer(op, "")
	s.Status, s.Task, s.Host = server.StatusBuilding, server.Spawning, "h1"
	return s
}
