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

	"github.com/keel-cloud/keel/adapters/fake"
	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/cmd/internal/node"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/port"
	"github.com/keel-cloud/keel/sagas"
)

// Interfaces attached to and detached from a running (or stopped) server:
// an attach makes a port owned by the server, with an address, and the host
// plugs it; a detach unplugs it and deletes the port, so its address is
// free again. A second change while one runs, a ninth NIC and an unknown
// network are refused with the reason; an attach whose port cannot be made
// leaves no port; a deleted server's attached ports are deleted with it.
func TestAttachAndDetachInterfaces(t *testing.T) {
	e := start(t, nil)
	ctx := context.Background()
	e.seed()
	pub, res, err := api.Create[api.Image](ctx, e.api, api.Images, api.ImageBody{Name: "pub", DiskFormat: "raw", Visibility: "public"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	seq := e.upload(pub.ID, []byte("bytes"), res.Sequence)
	alpha := e.addProject("alpha")
	alice := e.addUser("alice", "alpha", "member")
	meta := func() commands.Meta {
		return commands.Meta{CommandID: commands.NewID(), Actor: domain.Actor{User: "alice", Project: alpha.ID}, Scope: alpha.ID}
	}
	network := func(name, cidr, gateway string) string {
		t.Helper()
		n, err := e.node.App.CreateNetwork(ctx, commands.CreateNetworkRequest{Name: name}, meta())
		if err != nil {
			t.Fatal(err)
		}
		s, err := e.node.App.CreateSubnet(ctx, commands.CreateSubnetRequest{Network: string(n.State.ID), Name: name + "-sub", CIDR: cidr, Gateway: gateway}, meta())
		if err != nil {
			t.Fatal(err)
		}
		seq = max(seq, s.Seq)
		return string(n.State.ID)
	}
	net1 := network("net1", "10.8.0.0/29", "10.8.0.1")
	net2 := network("net2", "10.8.1.0/24", "10.8.1.1")
	tiny := network("tiny", "10.8.2.0/30", "10.8.2.1")

	web, _, err := api.Create[api.Accepted](ctx, alice.c, api.Servers, api.ServerBody{Name: "web", Flavor: "small", Image: "pub"}, api.Opts{MinSequence: seq})
	if err != nil {
		t.Fatal(err)
	}
	if op := e.waitOp(web.OperationID, 30*time.Second); op.Status != "succeeded" {
		t.Fatalf("create web: %s (%v)", op.Status, op.Error)
	}
	sid := web.Server.ID
	attach := func(net string) (api.Accepted, error) {
		a, _, err := api.Create[api.Accepted](ctx, alice.c, api.Path(api.Servers, sid, "interfaces"), api.InterfaceBody{Network: net}, api.Opts{MinSequence: seq})
		return a, err
	}
	detach := func(port string) (api.Accepted, error) {
		var a api.Accepted
		_, err := alice.c.Do(ctx, api.Request{Method: http.MethodDelete, Path: api.Path(api.Servers, sid, "interfaces", port)}, &a)
		return a, err
	}
	done := func(a api.Accepted, err error) api.Operation {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		op := e.waitOp(a.OperationID, 30*time.Second)
		if op.Status != "succeeded" {
			t.Fatalf("operation %s (%s): %s (%v)", op.ID, op.Kind, op.Status, op.Error)
		}
		return op
	}
	refused := func(status int, detail string) func(api.Accepted, error) {
		return func(_ api.Accepted, err error) {
			t.Helper()
			var p *api.Problem
			if !errors.As(err, &p) || p.Status != status || !strings.Contains(p.Detail, detail) {
				t.Fatalf("got %v; want %d saying %q", err, status, detail)
			}
		}
	}
	show := func() api.Server {
		t.Helper()
		s, _, err := api.Get[api.Server](ctx, alice.c, api.Path(api.Servers, sid), api.Opts{MinSequence: seq})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	host := func() *fake.Host {
		t.Helper()
		s := show()
		for _, h := range e.node.Hosts {
			if s.Host != nil && h.Name == *s.Host {
				return h
			}
		}
		t.Fatalf("server web is on host %v, not a simulated host", s.Host)
		return nil
	}
	plugged := func() []string {
		t.Helper()
		nics, err := host().NICs(ctx, sid)
		if err != nil {
			t.Fatal(err)
		}
		var macs []string
		for _, n := range nics {
			macs = append(macs, n.MAC)
		}
		return macs
	}

	// Attach net1 by name to the ACTIVE server: a port owned by the
	// server, with the subnet's first address, plugged by the host.
	a1, err := attach("net1")
	op := done(a1, err)
	if len(op.Steps) != 2 || op.Steps[0].Name != "network" || op.Steps[1].Name != "attach" || op.Kind != "server.attach_interface" {
		t.Fatalf("attach operation: %s, steps %+v", op.Kind, op.Steps)
	}
	port1 := sagas.InterfacePortID(sid, a1.OperationID)
	s := show()
	if len(s.NICs) != 1 || s.NICs[0].PortID != port1 || s.NICs[0].NetworkID != net1 || !slices.Equal(s.Addresses, []string{"10.8.0.2"}) || s.Task != nil {
		t.Fatalf("after attach: NICs %+v, addresses %v, task %v; want port %s with 10.8.0.2", s.NICs, s.Addresses, s.Task, port1)
	}
	p, _, err := e.node.App.Ports.Load(ctx, port1)
	if err != nil || !p.Live() || p.DeviceOwner != port.OwnerServer || p.DeviceID != sid || p.Project != alpha.ID {
		t.Fatalf("attached port: %+v (%v); want a live port owned by the server", p, err)
	}
	if got := plugged(); !slices.Equal(got, []string{p.MAC}) {
		t.Fatalf("host has NICs %v; want %s", got, p.MAC)
	}

	// While an attach runs (the host is slow), another change is refused.
	host().SetKnobs(fake.Knobs{Latency: 2 * time.Second})
	a2, err := attach(net2)
	if err != nil {
		t.Fatal(err)
	}
	refused(http.StatusConflict, "it is attaching_interface")(attach("net1"))
	refused(http.StatusConflict, "it is attaching_interface")(detach(port1))
	done(a2, nil)
	host().SetKnobs(fake.Knobs{})
	port2 := sagas.InterfacePortID(sid, a2.OperationID)

	// Unknown networks, unknown ports.
	refused(http.StatusUnprocessableEntity, "network nope")(attach("nope"))
	refused(http.StatusUnprocessableEntity, "network 00000000-0000-4000-8000-000000000001 does not exist")(attach("00000000-0000-4000-8000-000000000001"))
	refused(http.StatusNotFound, `no interface with port "00000000-0000-4000-8000-000000000002"`)(detach("00000000-0000-4000-8000-000000000002"))

	// A port that cannot be made (the tiny subnet's one address is taken):
	// the attach fails with the subnet's reason and leaves no port.
	if _, err := e.node.App.CreatePort(ctx, commands.CreatePortRequest{Network: tiny, Name: "squatter"}, meta()); err != nil {
		t.Fatal(err)
	}
	a3, err := attach(tiny)
	if err != nil {
		t.Fatal(err)
	}
	op = e.waitOp(a3.OperationID, 30*time.Second)
	if op.Status != "failed" || op.Error == nil || !strings.Contains(*op.Error, "subnet exhausted") {
		t.Fatalf("attach on a full subnet: %s (%v); want failed, subnet exhausted", op.Status, op.Error)
	}
	if p, _, _ := e.node.App.Ports.Load(ctx, sagas.InterfacePortID(sid, a3.OperationID)); p.Live() {
		t.Fatalf("the failed attach left its port: %+v", p)
	}
	if s := show(); len(s.NICs) != 2 || s.Task != nil {
		t.Fatalf("after a failed attach: NICs %+v, task %v; want the two NICs, no task", s.NICs, s.Task)
	}

	// Detach net1's NIC: unplugged, the port deleted, its address free.
	done(detach(port1))
	if s := show(); len(s.NICs) != 1 || s.NICs[0].PortID != port2 {
		t.Fatalf("after detach: NICs %+v; want only %s", s.NICs, port2)
	}
	if p, _, _ := e.node.App.Ports.Load(ctx, port1); p.Live() {
		t.Fatalf("the detached port is live: %+v", p)
	}
	if got := plugged(); slices.Contains(got, p.MAC) || len(got) != 1 {
		t.Fatalf("host has NICs %v after the detach of %s", got, p.MAC)
	}
	if _, err := e.node.App.CreatePort(ctx, commands.CreatePortRequest{Network: net1, Name: "reuse", IP: "10.8.0.2"}, meta()); err != nil {
		t.Fatalf("the detached port's address is not free: %v", err)
	}

	// A STOPPED server takes interfaces too, up to 8 NICs in all.
	done(e.act(sid, "stop"), nil)
	for range 7 {
		done(attach(net2))
	}
	s = show()
	if len(s.NICs) != 8 || s.Status != "STOPPED" || len(plugged()) != 8 {
		t.Fatalf("after 7 more attaches: %d NICs, status %s, %d plugged; want 8, STOPPED, 8", len(s.NICs), s.Status, len(plugged()))
	}
	refused(http.StatusConflict, "it has 8 NICs, the most a server can have")(attach(net2))

	// Deleting the server deletes every port it has.
	var del api.Accepted
	if _, err := alice.c.Do(ctx, api.Request{Method: http.MethodDelete, Path: api.Path(api.Servers, sid)}, &del); err != nil {
		t.Fatal(err)
	}
	done(del, nil)
	eventually(t, 10*time.Second, func() error {
		for _, n := range s.NICs {
			if p, _, _ := e.node.App.Ports.Load(ctx, n.PortID); p.Live() {
				return fmt.Errorf("port %s of the deleted server is live", n.PortID)
			}
		}
		return nil
	})
}

// A host that cannot plug or unplug NICs: the attach fails with the host's
// reason and deletes its port, the detach fails and leaves the NIC; a host
// that does not answer before the step's deadline has the attach or detach
// ended the same way, and undoes what it did late.
func TestInterfaceChangesTheHostFails(t *testing.T) {
	e := start(t, func(c *node.Config) {
		c.Timeouts = sagas.DefaultTimeouts
		c.Timeouts.Action = 2 * time.Second
	})
	ctx := context.Background()
	e.seed()
	alpha := e.addProject("alpha")
	alice := e.addUser("alice", "alpha", "member")
	meta := func() commands.Meta {
		return commands.Meta{CommandID: commands.NewID(), Actor: domain.Actor{User: "alice", Project: alpha.ID}, Scope: alpha.ID}
	}
	n, err := e.node.App.CreateNetwork(ctx, commands.CreateNetworkRequest{Name: "net1"}, meta())
	if err != nil {
		t.Fatal(err)
	}
	netID := string(n.State.ID)
	sub, err := e.node.App.CreateSubnet(ctx, commands.CreateSubnetRequest{Network: netID, Name: "sub1", CIDR: "10.7.0.0/24", Gateway: "10.7.0.1"}, meta())
	if err != nil {
		t.Fatal(err)
	}
	pub, res, err := api.Create[api.Image](ctx, e.api, api.Images, api.ImageBody{Name: "pub", DiskFormat: "raw", Visibility: "public"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	seq := max(e.upload(pub.ID, []byte("bytes"), res.Sequence), sub.Seq)
	web, _, err := api.Create[api.Accepted](ctx, alice.c, api.Servers, api.ServerBody{Name: "web", Flavor: "small", Image: "pub",
		Networks: []api.ServerNetwork{{Network: netID}}}, api.Opts{MinSequence: seq})
	if err != nil {
		t.Fatal(err)
	}
	if op := e.waitOp(web.OperationID, 30*time.Second); op.Status != "succeeded" {
		t.Fatalf("create web: %s (%v)", op.Status, op.Error)
	}
	sid := web.Server.ID
	s, _ := e.server(sid)
	var h *fake.Host
	for _, x := range e.node.Hosts {
		if s.Host != nil && x.Name == *s.Host {
			h = x
		}
	}
	attach := func() api.Accepted {
		t.Helper()
		a, _, err := api.Create[api.Accepted](ctx, alice.c, api.Path(api.Servers, sid, "interfaces"), api.InterfaceBody{Network: netID}, api.Opts{MinSequence: seq})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	failed := func(a api.Accepted, reason string) {
		t.Helper()
		op := e.waitOp(a.OperationID, 30*time.Second)
		if op.Status != "failed" || op.Error == nil || !strings.Contains(*op.Error, reason) {
			t.Fatalf("operation %s: %s (%v); want failed with %q", op.Kind, op.Status, op.Error, reason)
		}
		eventually(t, 10*time.Second, func() error {
			if s, _ := e.server(sid); s.Task != nil || len(s.NICs) != 1 {
				return fmt.Errorf("server after the failure: task %v, NICs %+v; want no task and its one NIC", s.Task, s.NICs)
			}
			return nil
		})
	}
	portGone := func(a api.Accepted) {
		t.Helper()
		eventually(t, 10*time.Second, func() error {
			if p, _, _ := e.node.App.Ports.Load(ctx, sagas.InterfacePortID(sid, a.OperationID)); !p.Exists || p.Live() {
				return fmt.Errorf("the failed attach's port: %+v; want made, then deleted", p)
			}
			return nil
		})
	}

	h.SetKnobs(fake.Knobs{FailNICs: true})
	var d api.Accepted
	if _, err := alice.c.Do(ctx, api.Request{Method: http.MethodDelete, Path: api.Path(api.Servers, sid, "interfaces", s.NICs[0].PortID)}, &d); err != nil {
		t.Fatal(err)
	}
	failed(d, "injected NIC failure")
	if p, _, _ := e.node.App.Ports.Load(ctx, s.NICs[0].PortID); !p.Live() {
		t.Fatalf("the NIC whose detach failed lost its port: %+v", p)
	}
	a := attach()
	failed(a, "injected NIC failure")
	portGone(a)

	// Too slow: the attach step's deadline (2 s) passes first.
	h.SetKnobs(fake.Knobs{Latency: 5 * time.Second})
	a = attach()
	failed(a, "did not finish within")
	portGone(a)
	// The slow host plugs it in the end (its report is refused as stale),
	// then unplugs it: the failed attach's compensation asked it to.
	hostHas := func(want ...int) {
		t.Helper()
		for _, n := range want {
			eventually(t, 40*time.Second, func() error {
				if nics, _ := h.NICs(ctx, sid); len(nics) != n || (n > 0 && nics[0].PortID != s.NICs[0].PortID) {
					return fmt.Errorf("the host has NICs %+v; want %d, the server's own first", nics, n)
				}
				return nil
			})
		}
	}
	hostHas(2, 1)

	// A detach the host does late: it unplugs the NIC after the deadline,
	// then plugs it again, as the server still records it.
	if _, err := alice.c.Do(ctx, api.Request{Method: http.MethodDelete, Path: api.Path(api.Servers, sid, "interfaces", s.NICs[0].PortID)}, &d); err != nil {
		t.Fatal(err)
	}
	failed(d, "did not finish within")
	hostHas(0, 1)
}
