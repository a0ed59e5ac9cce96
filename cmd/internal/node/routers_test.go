package node_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/cmd/internal/node"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/floatingip"
	"github.com/keel-cloud/keel/domain/port"
	"github.com/keel-cloud/keel/domain/project"
	"github.com/keel-cloud/keel/domain/router"
	"github.com/keel-cloud/keel/domain/subnet"
)

// refused checks that err is a problem with status whose detail says want.
func refused(t *testing.T, what string, err error, status int, want string) {
	t.Helper()
	var p *api.Problem
	if !errors.As(err, &p) || p.Status != status || !strings.Contains(p.Detail, want) {
		t.Fatalf("%s: %v; want %d saying %q", what, err, status, want)
	}
}

// put sends a PUT and decodes the answer into out.
func put(ctx context.Context, c *api.Client, path string, body, out any) (*api.Response, error) {
	return c.Do(ctx, api.Request{Method: http.MethodPut, Path: path, Body: body}, out)
}

// A project's router, through the API: an interface on its subnet takes
// the gateway address (one router per subnet), a gateway on the cloud's
// external network (named by a project that does not own it) takes an
// address of it; a floating IP from that network points at a port behind
// the router. What a floating IP uses cannot be taken away; deleting its
// port disassociates it; after the deletes no port, address or quota is
// held. The routers quota bounds the routers.
func TestRoutersAndFloatingIPs(t *testing.T) {
	e := start(t, nil)
	ctx := context.Background()
	e.addProject("alpha")
	alice := e.addUser("alice", "alpha", "member").c

	ext, _, err := api.Create[api.Network](ctx, e.api, api.Networks, api.NetworkBody{Name: "public", Kind: "flat", PhysicalNetwork: "physnet1", External: true}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	extSub, _, err := api.Create[api.Subnet](ctx, e.api, api.Subnets, api.SubnetBody{Network: ext.ID, CIDR: "203.0.113.0/29"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	blue, _, err := api.Create[api.Network](ctx, alice, api.Networks, api.NetworkBody{Name: "blue"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	sub, _, err := api.Create[api.Subnet](ctx, alice, api.Subnets, api.SubnetBody{Network: blue.ID, Name: "blue-v4", CIDR: "10.0.0.0/24"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}

	r, res, err := api.Create[api.Router](ctx, alice, api.Routers, api.RouterBody{Name: "edge"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	r, _, err = api.Create[api.Router](ctx, alice, api.Path(api.Routers, "edge", "interfaces"), api.RouterInterfaceBody{Subnet: "blue-v4"}, api.Opts{MinSequence: res.Sequence})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Interfaces) != 1 || r.Interfaces[0].IP != "10.0.0.1" || r.Interfaces[0].SubnetID != sub.ID {
		t.Fatalf("interfaces %+v, want one on the subnet's gateway 10.0.0.1", r.Interfaces)
	}
	other, res, err := api.Create[api.Router](ctx, alice, api.Routers, api.RouterBody{Name: "other"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = api.Create[api.Router](ctx, alice, api.Path(api.Routers, other.ID, "interfaces"), api.RouterInterfaceBody{Subnet: sub.ID}, api.Opts{MinSequence: res.Sequence})
	refused(t, "a second router on the subnet", err, http.StatusConflict, "already has a router interface")
	_, err = api.Delete(ctx, alice, api.Path(api.Routers, r.ID), api.Opts{}, nil)
	refused(t, "delete a router with an interface", err, http.StatusConflict, "still has 1 interface(s)")
	_, err = put(ctx, alice, api.Path(api.Routers, r.ID, "gateway"), api.RouterGatewayBody{Network: blue.ID}, nil)
	refused(t, "a gateway on an internal network", err, http.StatusUnprocessableEntity, "is not an external network")

	var gw api.Router
	if _, err := put(ctx, alice, api.Path(api.Routers, r.ID, "gateway"), api.RouterGatewayBody{Network: "public"}, &gw); err != nil {
		t.Fatal(err)
	}
	if g := gw.Gateway; g == nil || !g.SNAT || g.NetworkID != ext.ID || g.IP != "203.0.113.2" {
		t.Fatalf("gateway %+v, want SNAT on 203.0.113.2 of %s", g, ext.ID)
	}

	vm, _, err := api.Create[api.Port](ctx, alice, api.Ports, api.PortBody{Network: "blue", Name: "vm"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	fip, _, err := api.Create[api.FloatingIP](ctx, alice, api.FloatingIPs, api.FloatingIPBody{Network: "public"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	if fip.IP != "203.0.113.3" || fip.PortID != nil {
		t.Fatalf("floating IP %+v, want 203.0.113.3 pointing nowhere", fip)
	}
	var assoc api.FloatingIP
	res, err = put(ctx, alice, api.Path(api.FloatingIPs, fip.ID, "association"), api.FloatingIPAssociationBody{Port: "vm"}, &assoc)
	if err != nil {
		t.Fatal(err)
	}
	if assoc.RouterID == nil || *assoc.RouterID != r.ID || assoc.FixedIP == nil || *assoc.FixedIP != vm.FixedIPs[0].IP {
		t.Fatalf("association %+v, want router %s and %s", assoc, r.ID, vm.FixedIPs[0].IP)
	}
	shown, _, err := api.Get[api.FloatingIP](ctx, alice, api.Path(api.FloatingIPs, "203.0.113.3"), api.Opts{MinSequence: res.Sequence})
	if err != nil || shown.PortID == nil || *shown.PortID != vm.ID {
		t.Fatalf("floating IP by address: %+v %v", shown, err)
	}
	// The read model rebuilt from the log shows the same routers and
	// floating IPs.
	read := func() ([]api.Router, []api.FloatingIP) {
		t.Helper()
		rs, err := api.ListAll[api.Router](ctx, alice, api.Routers, api.Opts{})
		if err != nil {
			t.Fatal(err)
		}
		fs, err := api.ListAll[api.FloatingIP](ctx, alice, api.FloatingIPs, api.Opts{})
		if err != nil {
			t.Fatal(err)
		}
		return rs, fs
	}
	rs, fs := read()
	if _, err := e.api.Do(ctx, api.Request{Method: http.MethodPost, Path: "/v1/projections/routers/rebuild"}, nil); err != nil {
		t.Fatalf("rebuild routers: %v", err)
	}
	if rs2, fs2 := read(); !reflect.DeepEqual(rs, rs2) || !reflect.DeepEqual(fs, fs2) || len(rs) != 2 || len(fs) != 1 {
		t.Fatalf("after a rebuild: %+v %+v\nwant %+v %+v", rs2, fs2, rs, fs)
	}
	_, err = api.Delete(ctx, alice, api.Path(api.Routers, r.ID, "gateway"), api.Opts{}, nil)
	refused(t, "clear a gateway a floating IP uses", err, http.StatusConflict, "floating IP(s) through its gateway")
	_, err = api.Delete(ctx, alice, api.Path(api.Routers, r.ID, "interfaces", sub.ID), api.Opts{}, nil)
	refused(t, "remove an interface a floating IP uses", err, http.StatusConflict, "through its interface on subnet")

	// Deleting the port disassociates the floating IP (as Neutron does).
	res, err = api.Delete(ctx, alice, api.Path(api.Ports, vm.ID), api.Opts{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		f, _, err := api.Get[api.FloatingIP](ctx, alice, api.Path(api.FloatingIPs, fip.ID), api.Opts{MinSequence: res.Sequence})
		if err != nil || f.PortID != nil {
			return fmt.Errorf("floating IP after its port's delete: %+v %v", f, err)
		}
		return nil
	})
	// Associated again with another port, then disassociated.
	vm2, _, err := api.Create[api.Port](ctx, alice, api.Ports, api.PortBody{Network: "blue"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := put(ctx, alice, api.Path(api.FloatingIPs, fip.ID, "association"), api.FloatingIPAssociationBody{Port: vm2.ID}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := api.Delete(ctx, alice, api.Path(api.FloatingIPs, fip.ID, "association"), api.Opts{}, nil); err != nil {
		t.Fatal(err)
	}

	// Everything goes, and nothing is left held.
	for _, path := range []string{
		api.Path(api.FloatingIPs, fip.ID), api.Path(api.Routers, r.ID, "gateway"), api.Path(api.Routers, r.ID, "interfaces", sub.ID),
		api.Path(api.Routers, r.ID), api.Path(api.Routers, other.ID), api.Path(api.Ports, vm2.ID),
	} {
		if res, err = api.Delete(ctx, alice, path, api.Opts{}, nil); err != nil {
			t.Fatalf("DELETE %s: %v", path, err)
		}
	}
	for _, s := range []string{sub.ID, extSub.ID} {
		got, _, err := api.Get[api.Subnet](ctx, e.api, api.Path(api.Subnets, s), api.Opts{MinSequence: res.Sequence})
		if err != nil || got.InUse != 0 {
			t.Fatalf("subnet %s after the deletes: %d address(es) in use (%v)", got.CIDR, got.InUse, err)
		}
	}
	ports, err := api.ListAll[api.Port](ctx, e.api, api.Ports, api.Opts{MinSequence: res.Sequence, Query: url.Values{"all_projects": {"true"}}})
	if err != nil || len(ports) != 0 {
		t.Fatalf("ports after the deletes: %+v %v", ports, err)
	}
	if u := quotaInUse(t, alice, "alpha"); u["routers"] != 0 || u["floating_ips"] != 0 || u["ports"] != 0 {
		t.Fatalf("quota in use after the deletes: %v", u)
	}

	// The routers quota.
	if _, err := e.api.Do(ctx, api.Request{Method: "PUT", Path: api.Path(api.Projects, "alpha", "quotas"), Body: api.QuotasBody{Limits: map[string]int{"routers": 1}}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.Create[api.Router](ctx, alice, api.Routers, api.RouterBody{Name: "one"}, api.Opts{}); err != nil {
		t.Fatal(err)
	}
	_, _, err = api.Create[api.Router](ctx, alice, api.Routers, api.RouterBody{Name: "two"}, api.Opts{})
	refused(t, "a router past the quota", err, http.StatusConflict, "quota exceeded")
}

// Floating IPs: one past the external subnet's addresses is refused
// "subnet exhausted" and holds no quota; one pointed at a port that no
// router reaches is refused with a reason.
func TestFloatingIPRefusals(t *testing.T) {
	e := start(t, nil)
	ctx := context.Background()
	e.addProject("alpha")
	alice := e.addUser("alice", "alpha", "member").c
	ext, res, err := api.Create[api.Network](ctx, e.api, api.Networks, api.NetworkBody{Name: "public", Kind: "flat", PhysicalNetwork: "physnet1", External: true}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.Create[api.Subnet](ctx, e.api, api.Subnets, api.SubnetBody{Network: ext.ID, CIDR: "203.0.113.0/30"}, api.Opts{MinSequence: res.Sequence}); err != nil {
		t.Fatal(err)
	}
	blue, _, err := api.Create[api.Network](ctx, alice, api.Networks, api.NetworkBody{Name: "blue"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.Create[api.Subnet](ctx, alice, api.Subnets, api.SubnetBody{Network: blue.ID, CIDR: "10.0.0.0/24"}, api.Opts{}); err != nil {
		t.Fatal(err)
	}
	vm, _, err := api.Create[api.Port](ctx, alice, api.Ports, api.PortBody{Network: blue.ID}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	// A /30 has one address beside its gateway.
	fip, _, err := api.Create[api.FloatingIP](ctx, alice, api.FloatingIPs, api.FloatingIPBody{Network: ext.ID}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = api.Create[api.FloatingIP](ctx, alice, api.FloatingIPs, api.FloatingIPBody{Network: ext.ID}, api.Opts{})
	refused(t, "a floating IP past the subnet", err, http.StatusConflict, "subnet exhausted")
	if u := quotaInUse(t, alice, "alpha"); u["floating_ips"] != 1 {
		t.Fatalf("floating IPs in use: %v; want 1 (the refused one holds none)", u)
	}
	_, err = put(ctx, alice, api.Path(api.FloatingIPs, fip.ID, "association"), api.FloatingIPAssociationBody{Port: vm.ID}, nil)
	refused(t, "a port no router reaches", err, http.StatusConflict, "no router with a gateway on external network")
	_, _, err = api.Create[api.FloatingIP](ctx, alice, api.FloatingIPs, api.FloatingIPBody{Network: blue.ID}, api.Opts{})
	refused(t, "a floating IP of an internal network", err, http.StatusUnprocessableEntity, "is not an external network")
}

// What a crash leaves is given back by the sweeps after their grace: a
// floating IP create cut short after its reservation and its address (no
// floating IP), and a router create cut short after its reservation; late
// retries of those creates are refused. A live floating IP keeps its
// address through the sweeps. A floating IP whose port is deleted other
// than through the API (as a server's ports are) is disassociated by the
// floating IP sweep. An interface's port whose router never recorded it is
// deleted by the router port sweep, and its subnet's gateway is free again.
func TestRouterAndFloatingIPLeftoversAreSwept(t *testing.T) {
	e := start(t, func(c *node.Config) { c.QuotaGrace = 500 * time.Millisecond })
	ctx := context.Background()
	alpha := e.addProject("alpha")
	alice := e.addUser("alice", "alpha", "member").c
	ext, extSub, blue, _, r := edge(t, e, alice)
	live, _, err := api.Create[api.FloatingIP](ctx, alice, api.FloatingIPs, api.FloatingIPBody{Network: ext.ID}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	vm, _, err := api.Create[api.Port](ctx, alice, api.Ports, api.PortBody{Network: blue.ID}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := put(ctx, alice, api.Path(api.FloatingIPs, live.ID, "association"), api.FloatingIPAssociationBody{Port: vm.ID}, nil); err != nil {
		t.Fatal(err)
	}

	// The leftovers of two crashes, made as the creates make them.
	m := func(id string) commands.Meta {
		return commands.Meta{CommandID: id, Actor: domain.Actor{User: "alice", Project: alpha.ID}}
	}
	fipCmd, routerCmd := commands.NewID(), commands.NewID()
	fid, rid := commands.DeriveID(fipCmd, "floating-ip"), commands.DeriveID(routerCmd, "router")
	app := e.node.App
	if _, err := app.Projects.HandleBatched(ctx, alpha.ID, project.Reserve{Key: fid, Amounts: commands.FloatingIPQuota, At: time.Now()}, m(fipCmd+"/quota")); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Subnets.HandleBatched(ctx, extSub.ID, subnet.Allocate{Key: fid, At: time.Now()}, m(fipCmd+"/address")); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Projects.HandleBatched(ctx, alpha.ID, project.Reserve{Key: rid, Amounts: commands.RouterQuota, At: time.Now()}, m(routerCmd+"/quota")); err != nil {
		t.Fatal(err)
	}
	if u := quotaInUse(t, alice, "alpha"); u["floating_ips"] != 2 || u["routers"] != 2 {
		t.Fatalf("in use with the leftovers: %v", u)
	}
	// And an interface's port on a second subnet, made as AddRouterInterface
	// makes it, whose interface_added never came: it holds the gateway.
	green, _, err := api.Create[api.Subnet](ctx, alice, api.Subnets, api.SubnetBody{Network: blue.ID, CIDR: "10.1.0.0/24"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	ifCmd := commands.NewID()
	pid := commands.DeriveID(ifCmd, "router-interface")
	if _, err := app.Subnets.HandleBatched(ctx, green.ID, subnet.Allocate{Key: pid, Gateway: true, At: time.Now()}, m(ifCmd+"/address")); err != nil {
		t.Fatal(err)
	}
	off := false
	if _, err := app.Ports.Create(ctx, pid, port.Create{ID: port.ID(pid), Network: blue.ID, Project: alpha.ID, MAC: commands.PortMAC(pid), GeneratedMAC: true,
		FixedIPs: []port.FixedIP{{Subnet: green.ID, IP: "10.1.0.1"}}, PortSecurity: &off, DeviceOwner: port.OwnerRouterInterface, DeviceID: r.ID, At: time.Now()}, m(ifCmd+"/port")); err != nil {
		t.Fatal(err)
	}
	// The vm's port deleted as a server's delete does: through the
	// command, not the API.
	if _, err := app.DeletePort(ctx, vm.ID, m(commands.NewID())); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, func() error {
		if u := quotaInUse(t, alice, "alpha"); u["floating_ips"] != 1 || u["routers"] != 1 {
			return fmt.Errorf("in use: %v; want the live floating IP and router only", u)
		}
		s, _, err := api.Get[api.Subnet](ctx, e.api, api.Path(api.Subnets, extSub.ID), api.Opts{})
		if err != nil || s.InUse != 2 {
			return fmt.Errorf("external subnet: %d in use (%v); want the gateway's and the live floating IP's", s.InUse, err)
		}
		f, _, err := api.Get[api.FloatingIP](ctx, alice, api.Path(api.FloatingIPs, live.ID), api.Opts{})
		if err != nil || f.PortID != nil {
			return fmt.Errorf("the floating IP of the deleted port: %+v %v", f, err)
		}
		g, _, err := api.Get[api.Subnet](ctx, alice, api.Path(api.Subnets, green.ID), api.Opts{})
		if err != nil || g.InUse != 0 {
			return fmt.Errorf("the second subnet: %d in use (%v); want its gateway back from the orphaned router port", g.InUse, err)
		}
		return nil
	})
	_, err = app.AddRouterInterface(ctx, r.ID, green.ID, commands.Meta{CommandID: ifCmd, Actor: domain.Actor{User: "alice", Project: alpha.ID}, Scope: alpha.ID})
	if domain.KindOf(err) != domain.Conflict || !strings.Contains(err.Error(), "is gone") {
		t.Fatalf("late retry of the cut-short interface: %v; want a conflict saying its port is gone", err)
	}
	if _, _, err := api.Create[api.Router](ctx, alice, api.Path(api.Routers, r.ID, "interfaces"), api.RouterInterfaceBody{Subnet: green.ID}, api.Opts{}); err != nil {
		t.Fatalf("an interface on the subnet the orphaned port held: %v", err)
	}
	_, err = app.CreateFloatingIP(ctx, ext.ID, commands.Meta{CommandID: fipCmd, Actor: domain.Actor{User: "alice", Project: alpha.ID}, Scope: alpha.ID})
	if domain.KindOf(err) != domain.Conflict || !strings.Contains(err.Error(), "new Idempotency-Key") {
		t.Fatalf("late retry of the abandoned floating IP create: %v", err)
	}
	_, err = app.CreateRouter(ctx, "late", commands.Meta{CommandID: routerCmd, Actor: domain.Actor{User: "alice", Project: alpha.ID}, Scope: alpha.ID})
	if domain.KindOf(err) != domain.Conflict || !strings.Contains(err.Error(), "new Idempotency-Key") {
		t.Fatalf("late retry of the abandoned router create: %v", err)
	}
	// The gateway can be cleared now: the router let go of the floating IP.
	if _, err := api.Delete(ctx, alice, api.Path(api.Routers, r.ID, "gateway"), api.Opts{}, nil); err != nil {
		t.Fatal(err)
	}
	if u := quotaInUse(t, alice, "alpha"); u["floating_ips"] != 1 || u["routers"] != 1 {
		t.Fatalf("in use after the late retries: %v", u)
	}
}

// A router that lists a floating IP not associated through it refuses to
// lose its gateway; the floating IP sweep makes it let go, after its grace,
// of what two cut-short requests leave: an association stopped after the
// router's attach, and a disassociation stopped before the router's
// detach. A late retry of the cut-short association is refused (its attach
// was undone), and a new request associates it.
func TestRouterLetsGoOfFloatingIPsLeftByCutShortRequests(t *testing.T) {
	e := start(t, func(c *node.Config) { c.QuotaGrace = 2 * time.Second })
	ctx := context.Background()
	alpha := e.addProject("alpha")
	alice := e.addUser("alice", "alpha", "member").c
	ext, _, blue, sub, r := edge(t, e, alice)
	var err error
	vm, _, err := api.Create[api.Port](ctx, alice, api.Ports, api.PortBody{Network: blue.ID}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	var fips [2]api.FloatingIP
	for i := range fips {
		if fips[i], _, err = api.Create[api.FloatingIP](ctx, alice, api.FloatingIPs, api.FloatingIPBody{Network: ext.ID}, api.Opts{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := put(ctx, alice, api.Path(api.FloatingIPs, fips[1].ID, "association"), api.FloatingIPAssociationBody{Port: vm.ID}, nil); err != nil {
		t.Fatal(err)
	}

	// The two leftovers, made as the requests make their first commit.
	app := e.node.App
	m := func(id string) commands.Meta {
		return commands.Meta{CommandID: id, Actor: domain.Actor{User: "alice", Project: alpha.ID}}
	}
	assocCmd := commands.NewID()
	if _, err := app.Routers.Handle(ctx, r.ID, router.AttachFloatingIP{FloatingIP: fips[0].ID, Network: ext.ID, Subnet: sub.ID, At: time.Now()}, m(assocCmd+"/router")); err != nil {
		t.Fatal(err)
	}
	if _, err := app.FloatingIPs.Handle(ctx, fips[1].ID, floatingip.Disassociate{At: time.Now()}, m(commands.NewID())); err != nil {
		t.Fatal(err)
	}
	if rt, _, err := app.Routers.LoadLatest(ctx, r.ID); err != nil || len(rt.FloatingIPs) != 2 {
		t.Fatalf("router with the leftovers lists %+v (%v); want both floating IPs", rt.FloatingIPs, err)
	}
	_, err = api.Delete(ctx, alice, api.Path(api.Routers, r.ID, "gateway"), api.Opts{}, nil)
	refused(t, "clear the gateway of a router listing floating IPs", err, http.StatusConflict, "floating IP(s) through its gateway")

	eventually(t, 20*time.Second, func() error {
		rt, _, err := app.Routers.LoadLatest(ctx, r.ID)
		if err != nil || len(rt.FloatingIPs) != 0 {
			return fmt.Errorf("router lists %+v (%v); want none after the sweep", rt.FloatingIPs, err)
		}
		return nil
	})
	_, err = app.AssociateFloatingIP(ctx, fips[0].ID, vm.ID, commands.Meta{CommandID: assocCmd, Actor: domain.Actor{User: "alice", Project: alpha.ID}, Scope: alpha.ID})
	if domain.KindOf(err) != domain.Conflict || !strings.Contains(err.Error(), "as a new request") {
		t.Fatalf("late retry of the cut-short association: %v; want a conflict asking for a new request", err)
	}
	if f, _, err := app.FloatingIPs.LoadLatest(ctx, fips[0].ID); err != nil || f.Assoc != nil {
		t.Fatalf("floating IP after the refused retry: %+v (%v); want no association", f.Assoc, err)
	}
	if _, err := put(ctx, alice, api.Path(api.FloatingIPs, fips[0].ID, "association"), api.FloatingIPAssociationBody{Port: vm.ID}, nil); err != nil {
		t.Fatalf("a new association after the refused retry: %v", err)
	}
	// The sweep leaves a live association alone.
	time.Sleep(3 * time.Second)
	if rt, _, err := app.Routers.LoadLatest(ctx, r.ID); err != nil || len(rt.FloatingIPs) != 1 || rt.FloatingIPs[0].ID != fips[0].ID {
		t.Fatalf("router with one live association lists %+v (%v); want that floating IP", rt.FloatingIPs, err)
	}
	if _, err := api.Delete(ctx, alice, api.Path(api.FloatingIPs, fips[0].ID, "association"), api.Opts{}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := api.Delete(ctx, alice, api.Path(api.Routers, r.ID, "gateway"), api.Opts{}, nil); err != nil {
		t.Fatalf("clear the gateway once nothing uses it: %v", err)
	}
}

// edge makes, for the project of client c, what floating IPs need: the
// cloud's external network "public" (203.0.113.0/29), the project's network
// "blue" with 10.0.0.0/24, and a router "edge" with an interface on it and
// its gateway on public.
func edge(t *testing.T, e *env, c *api.Client) (ext api.Network, extSub api.Subnet, blue api.Network, sub api.Subnet, r api.Router) {
	t.Helper()
	ctx := context.Background()
	var err error
	ext, _, err = api.Create[api.Network](ctx, e.api, api.Networks, api.NetworkBody{Name: "public", Kind: "flat", PhysicalNetwork: "physnet1", External: true}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	extSub, _, err = api.Create[api.Subnet](ctx, e.api, api.Subnets, api.SubnetBody{Network: ext.ID, CIDR: "203.0.113.0/29"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	blue, _, err = api.Create[api.Network](ctx, c, api.Networks, api.NetworkBody{Name: "blue"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	sub, _, err = api.Create[api.Subnet](ctx, c, api.Subnets, api.SubnetBody{Network: blue.ID, CIDR: "10.0.0.0/24"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	r, _, err = api.Create[api.Router](ctx, c, api.Routers, api.RouterBody{Name: "edge"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.Create[api.Router](ctx, c, api.Path(api.Routers, r.ID, "interfaces"), api.RouterInterfaceBody{Subnet: sub.ID}, api.Opts{}); err != nil {
		t.Fatal(err)
	}
	if _, err := put(ctx, c, api.Path(api.Routers, r.ID, "gateway"), api.RouterGatewayBody{Network: ext.ID}, nil); err != nil {
		t.Fatal(err)
	}
	return ext, extSub, blue, sub, r
}
