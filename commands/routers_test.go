package commands_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/floatingip"
	"github.com/keel-cloud/keel/domain/network"
	"github.com/keel-cloud/keel/domain/port"
	"github.com/keel-cloud/keel/domain/project"
)

// external makes a provider network marked external, with a /29 subnet
// (203.0.113.2-6 to hand out), in a project of the cloud's.
func external(t *testing.T, a *commands.App) (netID, subnetID string) {
	t.Helper()
	ctx := ctxT(t)
	admin := commands.NewID()
	if _, err := a.Projects.Create(ctx, admin, project.Create{ID: project.ID(admin), Name: "cloud"}, meta("admin-project")); err != nil {
		t.Fatal(err)
	}
	am := func(id string) commands.Meta {
		return commands.Meta{CommandID: id, Actor: domain.Actor{User: "admin", Project: admin}}
	}
	n, err := a.CreateNetwork(ctx, commands.CreateNetworkRequest{Name: "public", Kind: network.Flat, PhysicalNetwork: "physnet1", External: true}, am("ext-net"))
	if err != nil {
		t.Fatal(err)
	}
	sn, err := a.CreateSubnet(ctx, commands.CreateSubnetRequest{Network: string(n.State.ID), CIDR: "203.0.113.0/29"}, am("ext-subnet"))
	if err != nil {
		t.Fatal(err)
	}
	return string(n.State.ID), string(sn.State.ID)
}

func refusedWith(t *testing.T, err error, kind domain.ErrorKind, want string) {
	t.Helper()
	if err == nil || domain.KindOf(err) != kind || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v (kind %v), want a refusal of kind %v saying %q", err, domain.KindOf(err), kind, want)
	}
}

// A router gets an interface on the subnet's gateway address (one router
// per subnet), a gateway on an external network, and translates a
// floating IP for a port behind it; what uses a leg keeps it; after the
// deletes every address and every reservation is back.
func TestRouterAndFloatingIPFlows(t *testing.T) {
	a, p, netID, subnetID, m := netWorld(t)
	extNet, extSub := external(t, a)
	ctx := ctxT(t)

	r, err := a.CreateRouter(ctx, "edge", m("router"))
	if err != nil {
		t.Fatal(err)
	}
	rid := string(r.State.ID)
	res, err := a.AddRouterInterface(ctx, rid, subnetID, m("if"))
	if err != nil {
		t.Fatal(err)
	}
	in := res.State.Interfaces[0]
	if in.IP != "10.0.0.1" || in.Subnet != subnetID {
		t.Fatalf("interface %+v, want the subnet's gateway 10.0.0.1", in)
	}
	pt, _, _ := a.Ports.LoadLatest(ctx, in.Port)
	if !pt.Live() || pt.DeviceOwner != port.OwnerRouterInterface || pt.DeviceID != rid || pt.PortSecurity {
		t.Fatalf("interface port %+v", pt)
	}
	if again, err := a.AddRouterInterface(ctx, rid, subnetID, m("if")); err != nil || len(again.State.Interfaces) != 1 {
		t.Fatalf("retried add: %v %+v", err, again.State.Interfaces)
	}
	r2, err := a.CreateRouter(ctx, "other", m("router-2"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.AddRouterInterface(ctx, string(r2.State.ID), subnetID, m("if-2"))
	refusedWith(t, err, domain.Conflict, "already has a router interface")
	_, err = a.DeleteRouter(ctx, rid, m("delete-busy"))
	refusedWith(t, err, domain.Conflict, "still has 1 interface(s)")
	_, err = a.SetRouterGateway(ctx, rid, commands.SetRouterGatewayRequest{Network: netID}, m("gw-internal"))
	refusedWith(t, err, domain.Invalid, "is not an external network")

	gw, err := a.SetRouterGateway(ctx, rid, commands.SetRouterGatewayRequest{Network: extNet}, m("gw"))
	if err != nil {
		t.Fatal(err)
	}
	if g := gw.State.Gateway; g == nil || !g.SNAT || g.Subnet != extSub || g.IP != "203.0.113.2" {
		t.Fatalf("gateway %+v, want SNAT on 203.0.113.2", g)
	}
	srv, err := a.CreatePort(ctx, commands.CreatePortRequest{Network: netID}, m("vm-port"))
	if err != nil {
		t.Fatal(err)
	}
	fip, err := a.CreateFloatingIP(ctx, extNet, m("fip"))
	if err != nil {
		t.Fatal(err)
	}
	fid := string(fip.State.ID)
	if fip.State.IP != "203.0.113.3" || fip.State.Project != p {
		t.Fatalf("floating IP %+v", fip.State)
	}
	as, err := a.AssociateFloatingIP(ctx, fid, string(srv.State.ID), m("assoc"))
	if err != nil {
		t.Fatal(err)
	}
	if x := as.State.Assoc; x == nil || x.Router != rid || x.FixedIP != srv.State.FixedIPs[0].IP {
		t.Fatalf("association %+v", x)
	}
	_, err = a.ClearRouterGateway(ctx, rid, m("clear-busy"))
	refusedWith(t, err, domain.Conflict, "translates 1 floating IP(s) through its gateway")
	_, err = a.RemoveRouterInterface(ctx, rid, subnetID, m("remove-busy"))
	refusedWith(t, err, domain.Conflict, "through its interface on subnet")

	if _, err := a.DisassociateFloatingIP(ctx, fid, m("disassoc")); err != nil {
		t.Fatal(err)
	}
	for _, step := range []func() error{
		func() error { _, err := a.ClearRouterGateway(ctx, rid, m("clear")); return err },
		func() error { _, err := a.RemoveRouterInterface(ctx, rid, subnetID, m("remove")); return err },
		func() error { _, err := a.DeleteRouter(ctx, rid, m("delete")); return err },
		func() error { _, err := a.DeleteRouter(ctx, string(r2.State.ID), m("delete-2")); return err },
		func() error { _, err := a.DeleteFloatingIP(ctx, fid, m("fip-delete")); return err },
		func() error { _, err := a.DeletePort(ctx, string(srv.State.ID), m("port-delete")); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []string{subnetID, extSub} {
		st, _, _ := a.Subnets.LoadLatest(ctx, s)
		if st.InUse != 0 || st.GatewayHolder != "" {
			t.Fatalf("subnet %s still hands out %d address(es) (gateway held by %q)", st.CIDR, st.InUse, st.GatewayHolder)
		}
	}
	for r, n := range used(t, a, p) {
		if n != 0 && r != project.QuotaNetworks {
			t.Fatalf("project still uses %d %s", n, r)
		}
	}
	if st, _, _ := a.Ports.LoadLatest(ctx, in.Port); st.Live() {
		t.Fatal("the interface's port outlived the interface")
	}
}

// Refusals: an interface on a subnet without a gateway, a floating IP
// pointed at a port no router reaches, floating IPs past the subnet's
// addresses, routers past the quota.
func TestRouterAndFloatingIPRefusals(t *testing.T) {
	a, p, netID, _, m := netWorld(t)
	extNet, _ := external(t, a)
	ctx := ctxT(t)
	none, err := a.CreateSubnet(ctx, commands.CreateSubnetRequest{Network: netID, CIDR: "10.0.1.0/29", Gateway: "none"}, m("no-gw"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := a.CreateRouter(ctx, "edge", m("router"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.AddRouterInterface(ctx, string(r.State.ID), string(none.State.ID), m("if"))
	refusedWith(t, err, domain.Conflict, "has no gateway address")

	pt, err := a.CreatePort(ctx, commands.CreatePortRequest{Network: netID}, m("port"))
	if err != nil {
		t.Fatal(err)
	}
	var fips []string
	for i := range 6 {
		f, err := a.CreateFloatingIP(ctx, extNet, m("fip-"+string(rune('a'+i))))
		if i == 5 {
			refusedWith(t, err, domain.Conflict, "subnet exhausted")
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		fips = append(fips, string(f.State.ID))
	}
	if n := used(t, a, p)[project.QuotaFloatingIPs]; n != 5 {
		t.Fatalf("%d floating IPs reserved, want 5 (the refused one gave its reservation back)", n)
	}
	_, err = a.AssociateFloatingIP(ctx, fips[0], string(pt.State.ID), m("assoc"))
	refusedWith(t, err, domain.Conflict, "no router with a gateway on external network")

	if _, err := a.Projects.Handle(ctx, p, project.SetQuotas{Limits: map[string]int{project.QuotaRouters: 2}}, meta("quota")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateRouter(ctx, "second", m("router-2")); err != nil {
		t.Fatal(err)
	}
	_, err = a.CreateRouter(ctx, "third", m("router-3"))
	refusedWith(t, err, domain.Conflict, "quota exceeded")
}

// A retried create is the same router, and the same floating IP, with
// nothing reserved twice.
func TestRetriedRouterAndFloatingIPCreates(t *testing.T) {
	a, p, _, _, m := netWorld(t)
	extNet, _ := external(t, a)
	ctx := ctxT(t)
	r1, err := a.CreateRouter(ctx, "edge", m("router"))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := a.CreateRouter(ctx, "edge", m("router"))
	if err != nil || r2.State.ID != r1.State.ID || !r2.Duplicate {
		t.Fatalf("retried router create: %+v %v", r2, err)
	}
	f1, err := a.CreateFloatingIP(ctx, extNet, m("fip"))
	if err != nil {
		t.Fatal(err)
	}
	f2, err := a.CreateFloatingIP(ctx, extNet, m("fip"))
	if err != nil || f2.State.ID != f1.State.ID || f2.State.IP != f1.State.IP {
		t.Fatalf("retried floating IP create: %+v %v", f2, err)
	}
	if u := used(t, a, p); u[project.QuotaRouters] != 1 || u[project.QuotaFloatingIPs] != 1 {
		t.Fatalf("in use after the retries: %v", u)
	}
}

// A disassociation whose router detach was lost (a crash between the two
// commits) is completed by a retry of the same request: the router lets
// go of the floating IP, and its gateway can be cleared.
func TestRetriedDisassociationDetachesFromTheRouter(t *testing.T) {
	a, _, netID, subnetID, m := netWorld(t)
	extNet, _ := external(t, a)
	ctx := ctxT(t)
	r, err := a.CreateRouter(ctx, "edge", m("router"))
	if err != nil {
		t.Fatal(err)
	}
	rid := string(r.State.ID)
	if _, err := a.AddRouterInterface(ctx, rid, subnetID, m("if")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SetRouterGateway(ctx, rid, commands.SetRouterGatewayRequest{Network: extNet}, m("gw")); err != nil {
		t.Fatal(err)
	}
	pt, err := a.CreatePort(ctx, commands.CreatePortRequest{Network: netID}, m("port"))
	if err != nil {
		t.Fatal(err)
	}
	fip, err := a.CreateFloatingIP(ctx, extNet, m("fip"))
	if err != nil {
		t.Fatal(err)
	}
	fid := string(fip.State.ID)
	if _, err := a.AssociateFloatingIP(ctx, fid, string(pt.State.ID), m("assoc")); err != nil {
		t.Fatal(err)
	}
	// The first step of DisassociateFloatingIP, alone.
	if _, err := a.FloatingIPs.Handle(ctx, fid, floatingip.Disassociate{At: time.Now()}, m("disassoc")); err != nil {
		t.Fatal(err)
	}
	_, err = a.ClearRouterGateway(ctx, rid, m("clear-early"))
	refusedWith(t, err, domain.Conflict, "translates 1 floating IP(s)")
	if _, err := a.DisassociateFloatingIP(ctx, fid, m("disassoc")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ClearRouterGateway(ctx, rid, m("clear")); err != nil {
		t.Fatalf("clear the gateway after the retried disassociation: %v", err)
	}
}

// Eight routers adding an interface on one subnet at once: one gets it
// (the subnet hands its gateway out once), the others are refused and
// leave no port behind.
func TestOneRouterPerSubnetUnderConcurrency(t *testing.T) {
	a, _, _, subnetID, m := netWorld(t)
	ctx := ctxT(t)
	var ids []string
	for i := range 8 {
		r, err := a.CreateRouter(ctx, "r", m("router-"+string(rune('a'+i))))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, string(r.State.ID))
	}
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = a.AddRouterInterface(ctx, id, subnetID, m("if-"+id))
		}()
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case domain.KindOf(err) != domain.Conflict:
			t.Fatalf("router %d: %v, want a conflict", i, err)
		}
		if err != nil {
			pid := commands.DeriveID("if-"+ids[i], "router-interface")
			if st, _, _ := a.Ports.LoadLatest(ctx, pid); st.Live() {
				t.Fatalf("a refused interface left its port %s", pid)
			}
		}
	}
	st, _, _ := a.Subnets.LoadLatest(ctx, subnetID)
	if won != 1 || st.InUse != 1 {
		t.Fatalf("%d interfaces made, subnet holds %d address(es); want 1 and 1", won, st.InUse)
	}
}
