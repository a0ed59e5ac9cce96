package servers

import (
	"testing"

	"github.com/keel-cloud/keel/domain/operation"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/sagas/runner"
)

// attaching is the server of an attach in progress (its port made or not).
func attaching(port string) server.State {
	s := withTask(onServer(opID, ""), server.AttachingInterface)
	s.Pending, s.AttachOperation = server.NIC{Network: "net-b", Port: port}, opID
	return s
}

// showEffects renders effects with their argument.
func showEffects(cs []runner.Command) []string {
	var out []string
	for _, c := range cs {
		if e, ok := c.Cmd.(runner.Effect); ok {
			out = append(out, e.Name+"("+e.Arg+")")
		}
	}
	return out
}

// An attach makes its port (an effect), records it, then the host plugs
// it; a failure or a deadline ends the task and deletes the port.
func TestAttachInterface(t *testing.T) {
	steps := []string{StepNetwork, StepAttach}
	run(t, []scenario{
		{"requested: the operation begins", given{noOperation, attaching("")},
			fromServer(&server.InterfaceAttachRequested{Host: "h1", Operation: opID, Network: "net-b"}),
			[]string{"operation.Begin op-1 op-1/begin"}},
		{"network step started: the port is made", given{running(KindAttachInterface, StepNetwork, 0, steps...), attaching("")},
			fromOperation(&operation.StepStarted{Step: StepNetwork}), []string{"effect interface_port op-1"}},
		{"port recorded: the network step is done", given{running(KindAttachInterface, StepNetwork, 0, steps...), attaching("port-b")},
			fromServer(&server.InterfacePortSet{Host: "h1", Operation: opID}), []string{"operation.CompleteStep op-1 op-1/network/done/0"}},
		{"port recorded again (redelivered): nothing", given{running(KindAttachInterface, StepAttach, 0, steps...), attaching("port-b")},
			fromServer(&server.InterfacePortSet{Host: "h1", Operation: opID}), nil},
		{"port recorded while compensating: the failure releases it", given{compensating(KindAttachInterface, steps...), attaching("port-b")},
			fromServer(&server.InterfacePortSet{Host: "h1", Operation: opID}), nil},
		{"attach step started: the host does the work", given{running(KindAttachInterface, StepAttach, 0, steps...), attaching("port-b")},
			fromOperation(&operation.StepStarted{Step: StepAttach}), nil},
		{"the host plugged it", given{running(KindAttachInterface, StepAttach, 0, steps...), onServer(opID, "")},
			fromServer(&server.InterfaceAttached{Host: "h1", Operation: opID}), []string{"operation.CompleteStep op-1 op-1/attach/done/0"}},
		{"the host could not: the port is deleted", given{running(KindAttachInterface, StepAttach, 0, steps...), onServer(opID, "")},
			fromServer(&server.InterfaceFailed{Task: server.AttachingInterface, Operation: opID, Port: "port-b", Reason: "no"}),
			[]string{"effect release_interface_port op-1", "operation.Finish op-1 op-1/finish"}},
		{"deadline (or no port: subnet exhausted): the task is aborted", given{compensating(KindAttachInterface, steps...), attaching("")},
			fromOperation(&operation.StepFailed{Step: StepNetwork, Reason: "network net-b: subnet exhausted"}),
			[]string{"server.AbortTask srv-1 op-1/compensate {else operation.Finish op-1 op-1/finish}"}},
		{"superseded by a delete before it began", given{running(KindAttachInterface, StepNetwork, 0, steps...), deleting("op-del")},
			fromOperation(&operation.Began{}), []string{"operation.Finish op-1 op-1/finish"}},
		{"began on its server", given{running(KindAttachInterface, StepNetwork, 0, steps...), attaching("")},
			fromOperation(&operation.Began{}), nil},
	})
	cs := reactInterface(timeouts, stateOf(given{noOperation, attaching("")}), fromServer(&server.InterfaceAttachRequested{Operation: opID}))
	b := cs[0].Cmd.(operation.Begin)
	if b.Kind != KindAttachInterface || len(b.Steps) != 2 || b.Steps[0] != (operation.StepSpec{Name: StepNetwork, Timeout: timeouts.Network}) ||
		b.Steps[1] != (operation.StepSpec{Name: StepAttach, Timeout: timeouts.Action}) {
		t.Fatalf("begin: %+v", b)
	}
	cs = reactInterface(timeouts, stateOf(given{running(KindAttachInterface, StepAttach, 0, steps...), onServer(opID, "")}),
		fromServer(&server.InterfaceFailed{Task: server.AttachingInterface, Operation: opID, Reason: "no", Detail: "virsh said"}))
	if f := cs[1].Cmd.(operation.Finish); f.Reason != "no" || f.Detail != "virsh said" || len(f.Compensated) != 1 || f.Compensated[0] != StepNetwork {
		t.Fatalf("finish: %+v", f)
	}
}

// A detach waits for the host to unplug the NIC, then deletes its port
// before the step is done.
func TestDetachInterface(t *testing.T) {
	detaching := withTask(onServer(opID, ""), server.DetachingInterface)
	run(t, []scenario{
		{"requested: the operation begins", given{noOperation, detaching},
			fromServer(&server.InterfaceDetachRequested{Host: "h1", Operation: opID}), []string{"operation.Begin op-1 op-1/begin"}},
		{"the host unplugged it: the port is deleted, the step done", given{running(KindDetachInterface, StepDetach, 0, StepDetach), onServer(opID, "")},
			fromServer(&server.InterfaceDetached{Host: "h1", Operation: opID, Port: "port-b"}),
			[]string{"effect delete_port op-1", "operation.CompleteStep op-1 op-1/detach/done/0"}},
		{"the host could not: the NIC stays", given{running(KindDetachInterface, StepDetach, 0, StepDetach), onServer(opID, "")},
			fromServer(&server.InterfaceFailed{Task: server.DetachingInterface, Operation: opID, Port: "port-b", Reason: "no"}),
			[]string{"operation.Finish op-1 op-1/finish"}},
		{"deadline: the task is aborted", given{compensating(KindDetachInterface, StepDetach), detaching},
			fromOperation(&operation.StepFailed{Step: StepDetach, Reason: "step detach did not finish within 1m0s"}),
			[]string{"server.AbortTask srv-1 op-1/compensate {else operation.Finish op-1 op-1/finish}"}},
		{"began after the host unplugged it (a redelivery after a restart)", given{running(KindDetachInterface, StepDetach, 0, StepDetach), onServer(opID, "")},
			fromOperation(&operation.Began{}), []string{"operation.CompleteStep op-1 op-1/detach/done/0"}},
		{"began on its server, the host at work", given{running(KindDetachInterface, StepDetach, 0, StepDetach), detaching},
			fromOperation(&operation.Began{}), nil},
	})
	cs := reactInterface(timeouts, stateOf(given{running(KindDetachInterface, StepDetach, 0, StepDetach), onServer(opID, "")}),
		fromServer(&server.InterfaceDetached{Host: "h1", Operation: opID, Port: "port-b"}))
	if got := showEffects(cs); len(got) != 1 || got[0] != "delete_port(port-b)" {
		t.Fatalf("effects: %v", got)
	}
}

// A server deleted with an attached interface, or during an attach, has
// its ports released like those of its networks.
func TestDeleteReleasesInterfacePorts(t *testing.T) {
	withNIC := deleting(opID)
	withNIC.NICs = []server.NIC{{Port: "port-b", Network: "net-b"}}
	midAttach := deleting(opID)
	midAttach.AttachOperation = "op-attach"
	for name, sv := range map[string]server.State{"attached": withNIC, "mid-attach": midAttach} {
		cs := reactDelete(timeouts, stateOf(given{running(KindDelete, StepDestroy, 0, StepDestroy), sv}), fromServer(&server.Deleted{Host: "h1"}))
		if got := showEffects(cs); len(got) != 1 || got[0] != "release_ports()" {
			t.Fatalf("%s: effects %v", name, got)
		}
	}
}
