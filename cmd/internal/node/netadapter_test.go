package node_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keel-cloud/keel/adapters/ovn/ovntest"
	"github.com/keel-cloud/keel/cmd/internal/node"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/network"
	"github.com/keel-cloud/keel/domain/port"
	"github.com/keel-cloud/keel/domain/subnet"
)

// keel serve with --ovn-nb runs the network adapter: it takes the lease,
// says so in keel_ovn_active, and writes what the log holds into the NB.
func TestServeWithOVNNBRunsTheNetworkAdapter(t *testing.T) {
	srv := ovntest.Start(t)
	e := start(t, func(c *node.Config) {
		c.FakeHosts = 0
		c.OVN = node.OVNConfig{NB: srv.NB, Reconcile: time.Second}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	meta := func() commands.Meta {
		return commands.Meta{CommandID: uuid.NewString(), Actor: domain.Actor{User: "test"}}
	}
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	const netID, subID, portID = "0a000000-0000-4000-8000-0000000000aa", "5a000000-0000-4000-8000-0000000000aa", "9a000000-0000-4000-8000-0000000000aa"
	nets := commands.New(e.node.Store, network.Decider, 0)
	subs := commands.New(e.node.Store, subnet.Decider, 0)
	ports := commands.New(e.node.Store, port.Decider, 0)
	must(nets.Create(ctx, netID, network.Create{ID: netID, Project: "p1", Name: "blue", At: time.Now()}, meta()))
	must(nets.Handle(ctx, netID, network.AddSubnet{Subnet: subID, At: time.Now()}, meta()))
	must(subs.Create(ctx, subID, subnet.Create{ID: subID, Network: netID, Project: "p1", CIDR: "10.9.0.0/24", At: time.Now()}, meta()))
	must(subs.Handle(ctx, subID, subnet.Allocate{Key: portID, IP: "10.9.0.5", At: time.Now()}, meta()))
	must(ports.Create(ctx, portID, port.Create{ID: portID, Network: netID, Project: "p1", MAC: "fa:16:3e:00:09:05",
		FixedIPs: []port.FixedIP{{Subnet: subID, IP: "10.9.0.5"}}, At: time.Now()}, meta()))

	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out := strings.TrimSpace(srv.NBCtl(t, "--bare", "--columns=addresses", "find", "Logical_Switch_Port", "name="+portID))
		if out == "fa:16:3e:00:09:05 10.9.0.5" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("port %s not in the NB: %q", portID, out)
		}
	}
	families, err := e.node.Metrics.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	active := -1.0
	for _, f := range families {
		if f.GetName() == "keel_ovn_active" {
			active = f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	if active != 1 {
		t.Errorf("keel_ovn_active = %v, want 1", active)
	}
}
