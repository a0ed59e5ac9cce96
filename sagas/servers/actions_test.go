package servers

import (
	"testing"

	"github.com/keel-cloud/keel/domain/operation"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/sagas/runner"
)

// A failed start, stop or reboot ends its operation with the user's reason
// and the host's account beside it.
func TestActionFailedPassesTheHostsAccount(t *testing.T) {
	cs := reactAction(timeouts, stateOf(given{running(KindReboot, StepReboot, 0, StepReboot), onServer(opID, "")}),
		fromServer(&server.ActionFailed{Task: server.RebootTask, Reason: "the host could not reboot the server", Detail: "virDomainReset: domain keel-srv-1 is not running"}))
	f := cs[0].Cmd.(operation.Finish)
	if f.Reason != "the host could not reboot the server" || f.Detail != "virDomainReset: domain keel-srv-1 is not running" {
		t.Fatalf("finish: %+v", f)
	}
}

func TestActions(t *testing.T) {
	var scenarios []scenario
	for _, a := range []struct {
		kind, step           string
		requested, completed runner.Event
		task                 server.Task
	}{
		{KindStart, StepPowerOn, fromServer(&server.StartRequested{Host: "h1", Operation: opID}), fromServer(&server.Started{Host: "h1"}), server.PoweringOn},
		{KindStop, StepPowerOff, fromServer(&server.StopRequested{Host: "h1", Operation: opID}), fromServer(&server.Stopped{Host: "h1"}), server.PoweringOff},
		{KindReboot, StepReboot, fromServer(&server.RebootRequested{Host: "h1", Operation: opID}), fromServer(&server.Rebooted{Host: "h1"}), server.RebootTask},
	} {
		scenarios = append(scenarios,
			scenario{a.kind + ": requested, the operation begins", given{noOperation, onServer(opID, "")},
				a.requested, []string{"operation.Begin op-1 op-1/begin"}},
			scenario{a.kind + ": the host reports it done", given{running(a.kind, a.step, 0, a.step), onServer(opID, "")},
				a.completed, []string{"operation.CompleteStep op-1 op-1/" + a.step + "/done/0"}},
			scenario{a.kind + ": the host fails it", given{running(a.kind, a.step, 0, a.step), onServer(opID, "")},
				fromServer(&server.ActionFailed{Reason: "libvirt said no"}), []string{"operation.Finish op-1 op-1/finish"}},
			scenario{a.kind + ": deadline passed, the server's task is aborted", given{compensating(a.kind, a.step), onServer(opID, "")},
				fromOperation(&operation.StepFailed{Step: a.step, Reason: "step did not finish within 1m0s"}),
				[]string{"server.AbortTask srv-1 op-1/compensate {else operation.Finish op-1 op-1/finish}"}},
			scenario{a.kind + ": the task aborted, compensation is over", given{compensating(a.kind, a.step), onServer(opID, "")},
				a.completed, []string{"operation.Finish op-1 op-1/finish"}},
			scenario{a.kind + ": superseded by a delete before it began", given{running(a.kind, a.step, 0, a.step), deleting("op-del")},
				fromOperation(&operation.Began{}), []string{"operation.Finish op-1 op-1/finish"}},
			scenario{a.kind + ": began on its server, the host at work", given{running(a.kind, a.step, 0, a.step), withTask(onServer(opID, ""), a.task)},
				fromOperation(&operation.Began{}), nil},
			scenario{a.kind + ": began after the host reported it done (a redelivery after a restart)", given{running(a.kind, a.step, 0, a.step), onServer(opID, "")},
				fromOperation(&operation.Began{}), []string{"operation.CompleteStep op-1 op-1/" + a.step + "/done/0"}},
			scenario{a.kind + ": began after the host failed it", given{running(a.kind, a.step, 0, a.step), func() server.State { s := onServer(opID, ""); s.Reason = "libvirt said no"; return s }()},
				fromOperation(&operation.Began{}), []string{"operation.Finish op-1 op-1/finish"}},
		)
	}
	run(t, scenarios)
}

func withTask(s server.State, t server.Task) server.State {
	s.Task = t
	return s
}
