package node_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keel-cloud/keel/adapters/ovn/ovntest"
	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/cmd/internal/node"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/port"
	"github.com/keel-cloud/keel/sagas"
)

// A server created on a network gets a NIC: its create saga makes a port
// (owned by the server, with an address of the subnet) before placing it,
// and the server shows its address. A build that fails after its port was
// made (no host fits), or one whose subnet has no address left, leaves no
// port and no address behind; a deleted server's port is deleted and its
// address handed out again.
func TestServersGetNICsAndGiveThemBack(t *testing.T) {
	nb := ovntest.Start(t) // the network adapter writes the ports' switch ports here
	e := start(t, func(c *node.Config) { c.OVN = node.OVNConfig{NB: nb.NB, Reconcile: time.Minute} })
	ctx := context.Background()
	e.seed()
	if _, _, err := api.Create[api.Flavor](ctx, e.api, api.Flavors, api.FlavorBody{Name: "huge", VCPUs: 1024, RAMMiB: 512, DiskGiB: 1}, api.Opts{}); err != nil {
		t.Fatal(err)
	}
	pub, res, err := api.Create[api.Image](ctx, e.api, api.Images, api.ImageBody{Name: "pub", DiskFormat: "raw", Visibility: "public"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	seq := e.upload(pub.ID, []byte("bytes"), res.Sequence)
	alpha := e.addProject("alpha")
	alice := e.addUser("alice", "alpha", "member")

	// A network with a /30: the gateway .1 and one address, .2, to give.
	meta := func(id string) commands.Meta {
		return commands.Meta{CommandID: id, Actor: domain.Actor{User: "alice", Project: alpha.ID}, Scope: alpha.ID}
	}
	net, err := e.node.App.CreateNetwork(ctx, commands.CreateNetworkRequest{Name: "net1"}, meta(commands.NewID()))
	if err != nil {
		t.Fatal(err)
	}
	netID := string(net.State.ID)
	sub, err := e.node.App.CreateSubnet(ctx, commands.CreateSubnetRequest{Network: netID, Name: "sub1", CIDR: "10.9.0.0/30", Gateway: "10.9.0.1"}, meta(commands.NewID()))
	if err != nil {
		t.Fatal(err)
	}
	seq = max(seq, sub.Seq)

	create := func(name, flavor string) api.Accepted {
		t.Helper()
		a, _, err := api.Create[api.Accepted](ctx, alice.c, api.Servers, api.ServerBody{Name: name, Flavor: flavor, Image: "pub",
			Networks: []api.ServerNetwork{{Network: netID}}}, api.Opts{MinSequence: seq})
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		return a
	}
	portOf := func(serverID string) port.State {
		t.Helper()
		p, _, err := e.node.App.Ports.Load(ctx, sagas.NICPortID(serverID, 0))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	// The first server gets the one address.
	web := create("web", "small")
	if op := e.waitOp(web.OperationID, 30*time.Second); op.Status != "succeeded" {
		t.Fatalf("create web: %s (%v)", op.Status, op.Error)
	}
	s, _, err := api.Get[api.Server](ctx, alice.c, api.Path(api.Servers, web.Server.ID), api.Opts{MinSequence: seq})
	if err != nil {
		t.Fatal(err)
	}
	p := portOf(web.Server.ID)
	if len(s.NICs) != 1 || s.NICs[0].PortID != string(p.ID) || s.NICs[0].NetworkID != netID || s.NICs[0].MAC != p.MAC ||
		!slices.Equal(s.Addresses, []string{"10.9.0.2"}) {
		t.Fatalf("server web shows NICs %+v, addresses %v; want port %s with 10.9.0.2", s.NICs, s.Addresses, p.ID)
	}
	if !p.Live() || p.DeviceOwner != port.OwnerServer || p.DeviceID != web.Server.ID || p.Project != alpha.ID {
		t.Fatalf("web's port: %+v; want a live port owned by the server in project alpha", p)
	}
	// The port goes with its server: a user cannot delete it under it.
	_, err = api.Delete(ctx, alice.c, api.Path(api.Ports, string(p.ID)), api.Opts{}, nil)
	var refused *api.Problem
	if !errors.As(err, &refused) || refused.Status != http.StatusConflict || !strings.Contains(refused.Detail, "is a NIC of server "+web.Server.ID) {
		t.Fatalf("delete web's port as its user: %v; want 409 saying it is a NIC of the server", err)
	}
	if op, _, _ := api.Get[api.Operation](ctx, e.api, api.Path(api.Operations, web.OperationID), api.Opts{}); len(op.Steps) != 3 || op.Steps[0].Name != "network" {
		t.Fatalf("create operation steps: %+v; want network, schedule, spawn", op.Steps)
	}

	// No address left: the build fails with the subnet's reason, and no
	// port is left for it.
	full := create("full", "small")
	op := e.waitOp(full.OperationID, 30*time.Second)
	if op.Status != "failed" || op.Error == nil || !strings.Contains(*op.Error, "subnet exhausted") {
		t.Fatalf("create on a full subnet: %s (%v); want failed with subnet exhausted", op.Status, op.Error)
	}
	if p := portOf(full.Server.ID); p.Live() {
		t.Fatalf("a port was left for the server that got no address: %+v", p)
	}

	// Delete web: its port goes, and its address is given again, to a
	// server whose build then fails for want of a host: its port, made
	// first, is deleted by the compensation, so the address is free again.
	var del api.Accepted
	if _, err := alice.c.Do(ctx, api.Request{Method: http.MethodDelete, Path: api.Path(api.Servers, web.Server.ID)}, &del); err != nil {
		t.Fatal(err)
	}
	if op := e.waitOp(del.OperationID, 30*time.Second); op.Status != "succeeded" {
		t.Fatalf("delete web: %s (%v)", op.Status, op.Error)
	}
	eventually(t, 10*time.Second, func() error {
		if p := portOf(web.Server.ID); p.Live() {
			return fmt.Errorf("web's port %s still live after its delete", p.ID)
		}
		return nil
	})
	huge := create("huge", "huge")
	op = e.waitOp(huge.OperationID, 30*time.Second)
	if op.Status != "failed" || len(op.Steps) != 3 || op.Steps[0].Status != "compensated" {
		t.Fatalf("create with no host to fit: %s, steps %+v; want failed with the network step compensated", op.Status, op.Steps)
	}
	if p := portOf(huge.Server.ID); !p.Exists || p.Live() || p.FixedIPs[0].IP != "10.9.0.2" {
		t.Fatalf("the port of the failed build: %+v; want made with 10.9.0.2, then deleted", p)
	}
	// Nor did its switch port stay in OVN: the NB holds the switch ports
	// of live ports only (none now).
	eventually(t, 20*time.Second, func() error {
		if lsps := strings.TrimSpace(nb.NBCtl(t, "--bare", "--columns=name", "find", "Logical_Switch_Port", "external_ids:keel\\:port!=\"\"")); lsps != "" {
			return fmt.Errorf("switch ports left in the NB: %s", lsps)
		}
		return nil
	})
	last := create("last", "small")
	if op := e.waitOp(last.OperationID, 30*time.Second); op.Status != "succeeded" {
		t.Fatalf("create last: %s (%v); the address of the failed build was not given back", op.Status, op.Error)
	}
	if p := portOf(last.Server.ID); !p.Live() || p.FixedIPs[0].IP != "10.9.0.2" {
		t.Fatalf("last's port: %+v; want 10.9.0.2 again", p)
	}
	eventually(t, 20*time.Second, func() error { // and it is in OVN
		if addrs := strings.TrimSpace(nb.NBCtl(t, "lsp-get-addresses", sagas.NICPortID(last.Server.ID, 0))); !strings.HasSuffix(addrs, " 10.9.0.2") {
			return fmt.Errorf("last's switch port has addresses %q", addrs)
		}
		return nil
	})

	// A network of another project is not found.
	e.addProject("beta")
	bob := e.addUser("bob", "beta", "member")
	_, _, err = api.Create[api.Accepted](ctx, bob.c, api.Servers, api.ServerBody{Name: "x", Flavor: "small", Image: "pub",
		Networks: []api.ServerNetwork{{Network: netID}}}, api.Opts{MinSequence: seq})
	var prob *api.Problem
	if !errors.As(err, &prob) || prob.Status != http.StatusUnprocessableEntity || !strings.Contains(prob.Detail, "network "+netID+" does not exist") {
		t.Fatalf("create on another project's network: %v; want 422 naming the network", err)
	}
}

// A floating IP that points at a server's port is disassociated when the
// server's delete deletes the port, at once (not by the sweep, minutes
// later), as when a user deletes a port of their own.
func TestServerDeleteDisassociatesItsFloatingIP(t *testing.T) {
	e := start(t, nil)
	ctx := context.Background()
	e.seed()
	must := func(_ any, _ *api.Response, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(api.Create[api.Network](ctx, e.api, api.Networks, api.NetworkBody{Name: "ext", Kind: "flat", PhysicalNetwork: "physnet1", External: true}, api.Opts{}))
	must(api.Create[api.Subnet](ctx, e.api, api.Subnets, api.SubnetBody{Network: "ext", CIDR: "203.0.113.0/24"}, api.Opts{}))
	must(api.Create[api.Network](ctx, e.api, api.Networks, api.NetworkBody{Name: "int"}, api.Opts{}))
	must(api.Create[api.Subnet](ctx, e.api, api.Subnets, api.SubnetBody{Network: "int", CIDR: "10.1.0.0/24", Name: "int-sub"}, api.Opts{}))
	r, _, err := api.Create[api.Router](ctx, e.api, api.Routers, api.RouterBody{Name: "edge"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	must(api.Create[api.Router](ctx, e.api, api.Path(api.Routers, r.ID, "interfaces"), api.RouterInterfaceBody{Subnet: "int-sub"}, api.Opts{}))
	if _, err := e.api.Do(ctx, api.Request{Method: http.MethodPut, Path: api.Path(api.Routers, r.ID, "gateway"), Body: api.RouterGatewayBody{Network: "ext"}}, nil); err != nil {
		t.Fatal(err)
	}
	acc, res, err := api.Create[api.Accepted](ctx, e.api, api.Servers, api.ServerBody{Name: "web", Flavor: "small", Image: "tiny",
		Networks: []api.ServerNetwork{{Network: "int"}}}, api.Opts{MinSequence: e.minSeq})
	if err != nil {
		t.Fatal(err)
	}
	if op := e.waitOp(acc.OperationID, 30*time.Second); op.Status != "succeeded" {
		t.Fatalf("create: %s (%v)", op.Status, op.Error)
	}
	s, _, err := api.Get[api.Server](ctx, e.api, api.Path(api.Servers, acc.Server.ID), api.Opts{MinSequence: res.Sequence})
	if err != nil || len(s.NICs) != 1 {
		t.Fatalf("server %+v, %v", s, err)
	}
	fip, _, err := api.Create[api.FloatingIP](ctx, e.api, api.FloatingIPs, api.FloatingIPBody{Network: "ext"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	var assoc api.FloatingIP
	if _, err := e.api.Do(ctx, api.Request{Method: http.MethodPut, Path: api.Path(api.FloatingIPs, fip.ID, "association"),
		Body: api.FloatingIPAssociationBody{Port: s.NICs[0].PortID}}, &assoc); err != nil || assoc.PortID == nil {
		t.Fatalf("associate: %+v, %v", assoc, err)
	}
	del := e.act(acc.Server.ID, "delete")
	if op := e.waitOp(del.OperationID, 30*time.Second); op.Status != "succeeded" {
		t.Fatalf("delete: %s (%v)", op.Status, op.Error)
	}
	eventually(t, 5*time.Second, func() error {
		f, _, err := api.Get[api.FloatingIP](ctx, e.api, api.Path(api.FloatingIPs, fip.ID), api.Opts{MinSequence: e.headSeq()})
		if err != nil {
			return err
		}
		if f.PortID != nil {
			return fmt.Errorf("floating IP %s still points at port %s of the deleted server", f.IP, *f.PortID)
		}
		return nil
	})
}
