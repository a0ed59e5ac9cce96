package servers

import (
	"strings"
	"testing"

	"github.com/keel-cloud/keel/domain/operation"
	"github.com/keel-cloud/keel/domain/server"
)

func TestDelete(t *testing.T) {
	steps := []string{StepDestroy}
	run(t, []scenario{
		{"delete requested: the operation begins", given{noOperation, deleting(opID)},
			fromServer(&server.DeleteRequested{Host: "h1", Operation: opID}),
			[]string{"operation.Begin op-1 op-1/begin"}},
		{"delete supersedes a running operation: it ends first", given{noOperation, deleting(opID)},
			fromServer(&server.DeleteRequested{Host: "h1", Operation: opID, Superseded: "op-start"}),
			[]string{"operation.Finish op-start op-start/superseded", "operation.Begin op-1 op-1/begin"}},
		{"began on its server", given{running(KindDelete, StepDestroy, 0, steps...), withTask(deleting(opID), server.DeleteTask)},
			fromOperation(&operation.Began{}), nil},
		{"began after the server was deleted (a redelivery after a restart): destroy done", given{running(KindDelete, StepDestroy, 0, steps...), func() server.State { s := deleting(opID); s.Status = server.StatusDeleted; return s }()},
			fromOperation(&operation.Began{}), []string{"operation.CompleteStep op-1 op-1/destroy/done/0"}},
		{"deleted by its host: claim and group place given back, destroy done", given{running(KindDelete, StepDestroy, 0, steps...), deleting(opID)},
			fromServer(&server.Deleted{Host: "h1"}),
			[]string{"host.Release h1 op-1/release/h1/srv-1", "operation.CompleteStep op-1 op-1/destroy/done/0"}},
		{"deleted in a group", given{running(KindDelete, StepDestroy, 0, steps...), func() server.State { s := deleting(opID); s.Hints.ServerGroup = "g1"; return s }()},
			fromServer(&server.Deleted{Host: "h1"}),
			[]string{"host.Release h1 op-1/release/h1/srv-1", "servergroup.RemoveMember g1 op-1/leave/srv-1", "operation.CompleteStep op-1 op-1/destroy/done/0"}},
		{"deleted in a project: its quota given back", given{running(KindDelete, StepDestroy, 0, steps...), func() server.State { s := deleting(opID); s.Project = "p1"; return s }()},
			fromServer(&server.Deleted{Host: "h1"}),
			[]string{"host.Release h1 op-1/release/h1/srv-1", "project.Release p1 op-1/quota/srv-1", "operation.CompleteStep op-1 op-1/destroy/done/0"}},
		{"forced delete in a project: its quota given back too", given{compensating(KindDelete, steps...), func() server.State { s := deleting(opID); s.Project = "p1"; return s }()},
			fromServer(&server.Deleted{Host: "h1", Forced: true, Reason: "host did not confirm"}),
			[]string{"host.Release h1 op-1/release/h1/srv-1", "project.Release p1 op-1/quota/srv-1", "operation.Finish op-1 op-1/finish"}},
		{"deleted before placement: no claim to give back", given{running(KindDelete, StepDestroy, 0, steps...), deleting(opID)},
			fromServer(&server.Deleted{}),
			[]string{"operation.CompleteStep op-1 op-1/destroy/done/0"}},
		{"host did not confirm in time: removed from the control plane", given{compensating(KindDelete, steps...), deleting(opID)},
			fromOperation(&operation.StepFailed{Step: StepDestroy, Reason: "step destroy did not finish within 1m0s"}),
			[]string{"server.ForceDelete srv-1 op-1/compensate {else operation.Finish op-1 op-1/finish}"}},
		{"forced delete: the operation fails with its reason", given{compensating(KindDelete, steps...), deleting(opID)},
			fromServer(&server.Deleted{Host: "h1", Forced: true, Reason: "host did not confirm"}),
			[]string{"host.Release h1 op-1/release/h1/srv-1", "operation.Finish op-1 op-1/finish"}},
	})
}

func TestDeleteForcedReason(t *testing.T) {
	cs := reactDelete(timeouts, stateOf(given{compensating(KindDelete, StepDestroy), deleting(opID)}),
		fromOperation(&operation.StepFailed{Step: StepDestroy, Reason: "late"}))
	fd := cs[0].Cmd.(server.ForceDelete)
	if !strings.Contains(fd.Reason, "host did not confirm the delete (late)") || cs[0].IfRefused[0].Cmd.(operation.Finish).Reason != "late" {
		t.Fatalf("force delete: %+v", cs[0])
	}
}

// A superseding delete names itself in the superseded operation's reason.
func TestDeleteSupersedes(t *testing.T) {
	cs := reactDelete(timeouts, stateOf(given{noOperation, deleting(opID)}),
		fromServer(&server.DeleteRequested{Operation: opID, Superseded: "op-start"}))
	if r := cs[0].Cmd.(operation.Finish).Reason; r != "superseded by delete (operation op-1)" {
		t.Fatalf("reason %q", r)
	}
	cs = reactCreate(timeouts, stateOf(given{running(KindCreate, StepSchedule, 0, StepSchedule), deleting("op-del")}), fromOperation(&operation.Began{}))
	if r := cs[0].Cmd.(operation.Finish).Reason; r != "superseded by delete (operation op-del)" {
		t.Fatalf("reason %q", r)
	}
}
