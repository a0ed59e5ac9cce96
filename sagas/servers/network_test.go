package servers

import (
	"testing"

	"github.com/keel-cloud/keel/domain/operation"
	"github.com/keel-cloud/keel/domain/server"
)

// withNetworks is a server that asked for two networks.
func withNetworks(s server.State) server.State {
	s.Networks = []string{"net-a", "net-b"}
	return s
}

// A create that asks for networks makes their ports first (an effect),
// then places the server; a failed build or a delete deletes its ports.
func TestCreateWithNetworks(t *testing.T) {
	steps := []string{StepNetwork, StepSchedule, StepSpawn}
	building := withNetworks(onServer(opID, ""))
	run(t, []scenario{
		{"created with networks: the operation begins with the network step", given{noOperation, building},
			fromServer(&server.Created{Operation: opID, Networks: []string{"net-a", "net-b"}}),
			[]string{"operation.Begin op-1 op-1/begin"}},
		{"network step started: the ports are made", given{running(KindCreate, StepNetwork, 0, steps...), building},
			fromOperation(&operation.StepStarted{Step: StepNetwork}),
			[]string{"effect ports op-1"}},
		{"NICs recorded: the network step is done", given{running(KindCreate, StepNetwork, 0, steps...), building},
			fromServer(&server.NICsSet{Operation: opID}),
			[]string{"operation.CompleteStep op-1 op-1/network/done/0"}},
		{"NICs recorded again (redelivered): nothing", given{running(KindCreate, StepSchedule, 0, steps...), building},
			fromServer(&server.NICsSet{Operation: opID}), nil},
		{"build failed: claim, then ports given back", given{running(KindCreate, "", 0, steps...), building},
			fromServer(&server.Failed{Host: "h1", Reason: "no valid host", Operation: opID}),
			[]string{"host.Release h1 op-1/release/h1/srv-1", "effect release_ports op-1", "operation.Finish op-1 op-1/finish"}},
		{"network step failed (subnet exhausted): the server fails", given{compensating(KindCreate, steps...), building},
			fromOperation(&operation.StepFailed{Step: StepNetwork, Reason: "network 1 (net-a): subnet exhausted"}),
			[]string{"server.Fail srv-1 op-1/compensate {else operation.Finish op-1 op-1/finish}"}},
		{"deleted: its ports are deleted", given{running(KindDelete, StepDestroy, 0, StepDestroy), withNetworks(deleting(opID))},
			fromServer(&server.Deleted{Host: "h1"}),
			[]string{"host.Release h1 op-1/release/h1/srv-1", "effect release_ports op-1", "operation.CompleteStep op-1 op-1/destroy/done/0"}},
	})
	// The operation of a create with networks has the network step first,
	// with its own deadline; one without networks has none.
	cs := reactCreate(timeouts, stateOf(given{noOperation, building}), fromServer(&server.Created{Operation: opID, Networks: []string{"net-a"}}))
	b := cs[0].Cmd.(operation.Begin)
	if len(b.Steps) != 3 || b.Steps[0].Name != StepNetwork || b.Steps[0].Timeout != timeouts.Network {
		t.Fatalf("begin with networks: steps %+v", b.Steps)
	}
	cs = reactCreate(timeouts, stateOf(given{noOperation, onServer(opID, "")}), fromServer(&server.Created{Operation: opID}))
	if b := cs[0].Cmd.(operation.Begin); len(b.Steps) != 2 || b.Steps[0].Name != StepSchedule {
		t.Fatalf("begin without networks: steps %+v", b.Steps)
	}
	// A failed build with networks names the network step as undone.
	cs = reactCreate(timeouts, stateOf(given{compensating(KindCreate, steps...), building}), fromServer(&server.Failed{Reason: "boom", Operation: opID}))
	if f := cs[len(cs)-1].Cmd.(operation.Finish); len(f.Compensated) != 1 || f.Compensated[0] != StepNetwork {
		t.Fatalf("finish: %+v", f)
	}
}
