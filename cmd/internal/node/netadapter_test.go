package node_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/keel-cloud/keel/adapters/ovn/ovntest"
	"github.com/keel-cloud/keel/adapters/postgres/pgtest"
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
	const netID, subID, portID = "0a000000-0000-4000-8000-0000000000aa", "5a000000-0000-4000-8000-0000000000aa", "9a000000-0000-4000-8000-0000000000aa"
	makeNetwork(t, e.node, netID, subID, "10.9.0.0/24")
	makePort(t, e.node, netID, subID, portID, "fa:16:3e:00:09:05", "10.9.0.5")
	waitLSP(t, srv, portID, "fa:16:3e:00:09:05 10.9.0.5")
	if active := ovnActive(t, e.node); active != 1 {
		t.Errorf("keel_ovn_active = %v, want 1", active)
	}
}

// Two keel serve on one NATS and one NB: one network adapter writes; when
// its keel serve stops, the other's takes over and writes.
func TestTwoServesOneActiveNetworkAdapter(t *testing.T) {
	srv := ovntest.Start(t)
	url := openNATS(t)
	db := pgtest.NewDatabase(t)
	tweak := func(c *node.Config) {
		c.FakeHosts, c.NATSURL, c.DatabaseURL = 0, url, db
		c.OVN = node.OVNConfig{NB: srv.NB, LeaseTTL: 2 * time.Second}
	}
	a := start(t, tweak)
	b := start(t, tweak)
	first, second := a, b
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		on := []float64{ovnActive(t, a.node), ovnActive(t, b.node)}
		if on[0]+on[1] == 1 {
			if on[1] == 1 {
				first, second = b, a
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("keel_ovn_active of the two = %v, want one 1", on)
		}
	}
	const netID, subID = "0a000000-0000-4000-8000-0000000000bb", "5a000000-0000-4000-8000-0000000000bb"
	const port1, port2 = "9a000000-0000-4000-8000-0000000000b1", "9a000000-0000-4000-8000-0000000000b2"
	makeNetwork(t, second.node, netID, subID, "10.8.0.0/24")
	makePort(t, second.node, netID, subID, port1, "fa:16:3e:00:08:01", "10.8.0.11")
	waitLSP(t, srv, port1, "fa:16:3e:00:08:01 10.8.0.11")
	if ovnActive(t, second.node) != 0 {
		t.Fatal("both network adapters are active")
	}

	first.node.Close()
	first.node = nil
	for deadline := time.Now().Add(5 * time.Second); ovnActive(t, second.node) != 1; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the second network adapter did not take over")
		}
	}
	makePort(t, second.node, netID, subID, port2, "fa:16:3e:00:08:02", "10.8.0.12")
	waitLSP(t, srv, port2, "fa:16:3e:00:08:02 10.8.0.12")
}

// openNATS starts a NATS JetStream server that any client may use, as an
// external cluster would be, and returns its URL.
func openNATS(t *testing.T) string {
	t.Helper()
	s, err := server.NewServer(&server.Options{ServerName: "ext", Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), JetStreamMaxStore: 1 << 30, JetStreamMaxMemory: 64 << 20, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s.ClientURL()
}

func cmdMeta() commands.Meta {
	return commands.Meta{CommandID: uuid.NewString(), Actor: domain.Actor{User: "test"}}
}

func mustDo(t *testing.T, _ any, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// makeNetwork makes a network with one subnet through the command handlers.
func makeNetwork(t *testing.T, n *node.Node, netID, subID, cidr string) {
	t.Helper()
	ctx := context.Background()
	nets := commands.New(n.Store, network.Decider, 0)
	subs := commands.New(n.Store, subnet.Decider, 0)
	r, err := nets.Create(ctx, netID, network.Create{ID: network.ID(netID), Project: "p1", Name: "blue", At: time.Now()}, cmdMeta())
	mustDo(t, r, err)
	r, err = nets.Handle(ctx, netID, network.AddSubnet{Subnet: subID, At: time.Now()}, cmdMeta())
	mustDo(t, r, err)
	rs, err := subs.Create(ctx, subID, subnet.Create{ID: subnet.ID(subID), Network: netID, Project: "p1", CIDR: cidr, At: time.Now()}, cmdMeta())
	mustDo(t, rs, err)
}

// makePort allocates ip and makes a port with it.
func makePort(t *testing.T, n *node.Node, netID, subID, portID, mac, ip string) {
	t.Helper()
	ctx := context.Background()
	subs := commands.New(n.Store, subnet.Decider, 0)
	ports := commands.New(n.Store, port.Decider, 0)
	rs, err := subs.Handle(ctx, subID, subnet.Allocate{Key: portID, IP: ip, At: time.Now()}, cmdMeta())
	mustDo(t, rs, err)
	rp, err := ports.Create(ctx, portID, port.Create{ID: port.ID(portID), Network: netID, Project: "p1", MAC: mac,
		FixedIPs: []port.FixedIP{{Subnet: subID, IP: ip}}, At: time.Now()}, cmdMeta())
	mustDo(t, rp, err)
}

// waitLSP waits until the NB has the port with its addresses.
func waitLSP(t *testing.T, srv *ovntest.Servers, portID, addr string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out := strings.TrimSpace(srv.NBCtl(t, "--bare", "--columns=addresses", "find", "Logical_Switch_Port", "name="+portID))
		if out == addr {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("port %s not in the NB: %q", portID, out)
		}
	}
}

// ovnActive reads keel_ovn_active from the node's registry (-1: absent).
func ovnActive(t *testing.T, n *node.Node) float64 {
	t.Helper()
	families, err := n.Metrics.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "keel_ovn_active" {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}
