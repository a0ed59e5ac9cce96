package servers

import (
	"fmt"

	"github.com/keel-cloud/keel/domain/operation"
	"github.com/keel-cloud/keel/domain/project"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/sagas/runner"
)

// Delete removes a server: it ends the operation the delete superseded,
// waits for the host to destroy the server, and gives its claim, group
// place and ports back. A host that does not confirm in time has the server removed
// from the control plane anyway (forced).
func Delete(t Timeouts) runner.Workflow {
	return runner.Workflow{
		Name:      "server delete",
		Kinds:     []string{KindDelete},
		Events:    []string{server.TypeDeleteRequested, server.TypeDeleted},
		Operation: operationOf,
		React:     func(s runner.State, e runner.Event) []runner.Command { return reactDelete(t, s, e) },
	}
}

// giveQuotaBack releases what a deleted server held of its project's quota.
func giveQuotaBack(s runner.State, opID, sid string) []runner.Command {
	if s.Server.Project == "" {
		return nil
	}
	return []runner.Command{{ID: s.Server.Project, Cmd: project.Release{Key: sid, Amounts: project.ServerAmounts(s.Server.Flavor.VCPUs, s.Server.Flavor.RAMMiB), At: s.Now}, Operation: opID, What: "quota/" + sid, Tolerate: refusals}}
}

func reactDelete(t Timeouts, s runner.State, e runner.Event) []runner.Command {
	sid, opID := e.AggregateID, e.CorrelationID
	switch ev := e.Event.(type) {
	case *server.DeleteRequested:
		var out []runner.Command
		if ev.Superseded != "" {
			reason := fmt.Sprintf("superseded by delete (operation %s)", ev.Operation)
			out = append(out, op(ev.Superseded, "superseded", operation.Finish{Reason: reason, At: s.Now}))
		}
		return append(out, begin(s, ev.Operation, KindDelete, sid, operation.StepSpec{Name: StepDestroy, Timeout: t.Destroy})...)
	case *server.Deleted:
		out := concat(release(s, opID, ev.Host, sid, "server deleted"), leave(s, opID), releasePorts(s, opID), giveQuotaBack(s, opID, sid))
		if ev.Forced {
			return append(out, finish(s, opID, ev.Reason, "", nil)...)
		}
		return append(out, completeOrFinish(s, opID, StepDestroy)...)
	case *operation.Began:
		if out := supersededAtBegin(s); out != nil {
			return out
		}
		// Deleted before the saga began the operation (a redelivery after
		// a restart, see Create): the destroy step is done.
		if s.Server.Status == server.StatusDeleted && s.Server.Operation == string(s.Op.ID) {
			return completeOrFinish(s, string(s.Op.ID), StepDestroy)
		}
		return nil
	case *operation.StepFailed:
		reason := "host did not confirm the delete (" + ev.Reason + "); removed from the control plane"
		return compensate(s, server.ForceDelete{Reason: reason, At: s.Now}, ev.Reason)
	}
	return nil
}
