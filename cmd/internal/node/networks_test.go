package node_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keel-cloud/keel/adapters/ovn"
	"github.com/keel-cloud/keel/adapters/ovn/ovntest"
	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/cmd/internal/node"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/project"
	"github.com/keel-cloud/keel/domain/subnet"
)

// netOf makes a network with one subnet of cidr as u and returns them.
func netOf(t *testing.T, u *api.Client, name, cidr string) (api.Network, api.Subnet, uint64) {
	t.Helper()
	ctx := context.Background()
	n, _, err := api.Create[api.Network](ctx, u, api.Networks, api.NetworkBody{Name: name}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	s, res, err := api.Create[api.Subnet](ctx, u, api.Subnets, api.SubnetBody{Network: n.ID, CIDR: cidr}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	return n, s, res.Sequence
}

// problemOf is the problem an answer was, or fails.
func problemOf(t *testing.T, what string, err error) *api.Problem {
	t.Helper()
	var p *api.Problem
	if !errors.As(err, &p) {
		t.Fatalf("%s: %v; want a problem", what, err)
	}
	return p
}

func wantProblem(t *testing.T, what string, err error, status int, detail string) {
	t.Helper()
	p := problemOf(t, what, err)
	if p.Status != status || !strings.Contains(p.Detail, detail) {
		t.Fatalf("%s: %d %q; want %d saying %q", what, p.Status, p.Detail, status, detail)
	}
}

// 300 concurrent port creates on a /24: 253 get an address (every usable
// one but the gateway), each a different one; the other 47 are refused
// with 409 "subnet exhausted" and hold no quota. Deleted ports' addresses
// come back to the next creates.
func TestPortsOnASubnet(t *testing.T) {
	e := start(t, nil)
	ctx := context.Background()
	e.addProject("alpha")
	alice := e.addUser("alice", "alpha", "member")
	n, s, _ := netOf(t, alice.c, "web", "10.0.0.0/24")

	var (
		mu      sync.Mutex
		byIP    = map[string]string{}
		refused = map[string]int{}
		wg      sync.WaitGroup
	)
	for range 300 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, _, err := api.Create[api.Port](ctx, alice.c, api.Ports, api.PortBody{Network: n.ID}, api.Opts{})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				var pr *api.Problem
				if errors.As(err, &pr) && pr.Status == http.StatusConflict && strings.Contains(pr.Detail, "subnet exhausted") {
					refused["subnet exhausted"]++
				} else {
					refused[err.Error()]++
				}
				return
			}
			if prev, dup := byIP[p.FixedIPs[0].IP]; dup {
				t.Errorf("ports %s and %s both got %s", prev, p.ID, p.FixedIPs[0].IP)
			}
			byIP[p.FixedIPs[0].IP] = p.ID
		}()
	}
	wg.Wait()
	if len(byIP) != 253 || refused["subnet exhausted"] != 47 || len(refused) != 1 {
		t.Fatalf("%d ports made, refusals %v; want 253 and 47 subnet exhausted", len(byIP), refused)
	}
	if id, ok := byIP["10.0.0.1"]; ok {
		t.Fatalf("port %s got the gateway", id)
	}
	if u := quotaInUse(t, alice.c, "alpha"); u["ports"] != 253 {
		t.Fatalf("ports in use %d; want 253 (refused creates hold nothing)", u["ports"])
	}
	head := e.headSeq()
	listed := e.portsOn(alice.c, n.ID, head)
	if len(listed) != 253 {
		t.Fatalf("the port list has %d ports; want 253", len(listed))
	}
	sub, _, err := api.Get[api.Subnet](ctx, alice.c, api.Path(api.Subnets, s.ID), api.Opts{MinSequence: head})
	if err != nil || sub.InUse != 253 {
		t.Fatalf("subnet in use %d, %v; want 253", sub.InUse, err)
	}

	// Ten ports go; their addresses, and only theirs, come back.
	var freed []string
	for ip, id := range byIP {
		if len(freed) == 10 {
			break
		}
		if _, err := api.Delete(ctx, alice.c, api.Path(api.Ports, id), api.Opts{}, nil); err != nil {
			t.Fatal(err)
		}
		freed = append(freed, ip)
	}
	var again []string
	for range 10 {
		p, _, err := api.Create[api.Port](ctx, alice.c, api.Ports, api.PortBody{Network: n.ID}, api.Opts{})
		if err != nil {
			t.Fatalf("create after deletes: %v", err)
		}
		again = append(again, p.FixedIPs[0].IP)
	}
	slices.Sort(freed)
	slices.Sort(again)
	if !slices.Equal(freed, again) {
		t.Fatalf("new ports got %v; want the freed %v", again, freed)
	}
	_, _, err = api.Create[api.Port](ctx, alice.c, api.Ports, api.PortBody{Network: n.ID}, api.Opts{})
	wantProblem(t, "one more port", err, http.StatusConflict, "subnet exhausted")
}

// headSeq is the sequence of the log's last commit.
func (e *env) headSeq() uint64 {
	e.t.Helper()
	seq, err := e.node.Store.LastSequence(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return seq
}

// portsOn lists every port of a network, after sequence seq.
func (e *env) portsOn(c *api.Client, network string, seq uint64) []api.Port {
	e.t.Helper()
	var out []api.Port
	cursor := ""
	for {
		q := map[string][]string{"network": {network}, "limit": {"1000"}}
		if cursor != "" {
			q["cursor"] = []string{cursor}
		}
		page, _, err := api.Get[api.List[api.Port]](context.Background(), c, api.Ports, api.Opts{Query: q, MinSequence: seq})
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, page.Items...)
		if cursor = page.NextCursor; cursor == "" {
			return out
		}
	}
}

// A port create cut short after its address and quota were taken (as a
// crash between the allocation and the port's first commit leaves it) is
// repaired by the sweeps: the address goes back to the subnet and the
// quota to the project; a late retry of that create is refused with a
// reason and takes nothing.
func TestAddressSweepGivesBackAbandonedAddresses(t *testing.T) {
	e := start(t, func(c *node.Config) { c.QuotaGrace = 500 * time.Millisecond })
	ctx := context.Background()
	alpha := e.addProject("alpha")
	alice := e.addUser("alice", "alpha", "member")
	n, s, seq := netOf(t, alice.c, "web", "10.0.0.0/24")
	kept, _, err := api.Create[api.Port](ctx, alice.c, api.Ports, api.PortBody{Network: n.ID}, api.Opts{MinSequence: seq})
	if err != nil {
		t.Fatal(err)
	}

	// The leftover of a crash: the create's reservation and address, made
	// as CreatePort makes them, and no port.
	cmdID := commands.NewID()
	pid := commands.DeriveID(cmdID, "port")
	m := commands.Meta{CommandID: cmdID + "/quota", Actor: domain.Actor{User: "alice", Project: alpha.ID}}
	if _, err := e.node.App.Projects.HandleBatched(ctx, alpha.ID, project.Reserve{Key: pid, Amounts: commands.PortQuota, At: time.Now()}, m); err != nil {
		t.Fatal(err)
	}
	m.CommandID = cmdID + "/address"
	if _, err := e.node.App.Subnets.HandleBatched(ctx, s.ID, subnet.Allocate{Key: pid, At: time.Now()}, m); err != nil {
		t.Fatal(err)
	}
	if u := quotaInUse(t, alice.c, "alpha"); u["ports"] != 2 {
		t.Fatalf("ports in use with the leftover: %d; want 2", u["ports"])
	}
	eventually(t, 20*time.Second, func() error {
		sub, _, err := api.Get[api.Subnet](ctx, alice.c, api.Path(api.Subnets, s.ID), api.Opts{})
		if err != nil {
			return err
		}
		if u := quotaInUse(t, alice.c, "alpha"); sub.InUse != 1 || u["ports"] != 1 {
			return fmt.Errorf("subnet in use %d, ports quota in use %d; want the kept port's 1 and 1", sub.InUse, u["ports"])
		}
		return nil
	})
	_, err = e.node.App.CreatePort(ctx, commands.CreatePortRequest{Network: n.ID}, commands.Meta{CommandID: cmdID, Actor: domain.Actor{User: "alice", Project: alpha.ID}, Scope: alpha.ID})
	if domain.KindOf(err) != domain.Conflict || !strings.Contains(err.Error(), "new Idempotency-Key") {
		t.Fatalf("late retry of the abandoned create: %v; want a conflict that says to send it again with a new key", err)
	}
	// The kept port keeps its address through further passes.
	time.Sleep(1500 * time.Millisecond) // several sweep passes: nothing to wait on when nothing happens
	sub, _, err := api.Get[api.Subnet](ctx, alice.c, api.Path(api.Subnets, s.ID), api.Opts{})
	if u := quotaInUse(t, alice.c, "alpha"); err != nil || sub.InUse != 1 || u["ports"] != 1 {
		t.Fatalf("after more passes: subnet in use %d (%v), ports quota %d; want 1 and 1", sub.InUse, err, u["ports"])
	}
	p, _, err := api.Get[api.Port](ctx, alice.c, api.Path(api.Ports, kept.ID), api.Opts{})
	if err != nil || p.FixedIPs[0].IP != kept.FixedIPs[0].IP {
		t.Fatalf("kept port %+v, %v; want it with %s", p.FixedIPs, err, kept.FixedIPs[0].IP)
	}
}

// Two projects each make a network with the same CIDR: both work and hand
// out the same addresses; neither sees nor uses the other's.
func TestSameCIDRInTwoProjects(t *testing.T) {
	srv := ovntest.Start(t) // and in OVN: two switches that share nothing
	e := start(t, func(c *node.Config) { c.OVN = node.OVNConfig{NB: srv.NB, Reconcile: time.Minute} })
	ctx := context.Background()
	e.addProject("alpha")
	e.addProject("beta")
	alice, bob := e.addUser("alice", "alpha", "member"), e.addUser("bob", "beta", "member")
	na, _, _ := netOf(t, alice.c, "web", "10.0.0.0/24")
	nb, _, _ := netOf(t, bob.c, "web", "10.0.0.0/24")
	pa, _, err := api.Create[api.Port](ctx, alice.c, api.Ports, api.PortBody{Network: "web"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	pb, res, err := api.Create[api.Port](ctx, bob.c, api.Ports, api.PortBody{Network: "web"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	if pa.NetworkID != na.ID || pb.NetworkID != nb.ID || pa.FixedIPs[0].IP != "10.0.0.2" || pb.FixedIPs[0].IP != "10.0.0.2" {
		t.Fatalf("ports %s on %s and %s on %s; want 10.0.0.2 on each project's own network", pa.FixedIPs, pa.NetworkID, pb.FixedIPs, pb.NetworkID)
	}
	if pa.SecurityGroups[0] == pb.SecurityGroups[0] {
		t.Fatalf("both ports are in group %s; want each project's own default group", pa.SecurityGroups[0])
	}
	_, _, err = api.Get[api.Network](ctx, bob.c, api.Path(api.Networks, na.ID), api.Opts{MinSequence: res.Sequence})
	wantProblem(t, "bob reads alice's network", err, http.StatusNotFound, "not found")
	_, _, err = api.Create[api.Port](ctx, bob.c, api.Ports, api.PortBody{Network: na.ID}, api.Opts{})
	wantProblem(t, "bob makes a port on alice's network", err, http.StatusUnprocessableEntity, "does not exist")
	_, err = api.Delete(ctx, bob.c, api.Path(api.Ports, pa.ID), api.Opts{}, nil)
	wantProblem(t, "bob deletes alice's port", err, http.StatusNotFound, "not found")
	list, _, err := api.Get[api.List[api.Network]](ctx, bob.c, api.Networks, api.Opts{})
	if err != nil || len(list.Items) != 1 || list.Items[0].ID != nb.ID {
		t.Fatalf("bob's networks %+v, %v; want only his own", list.Items, err)
	}
	// In OVN each network is a switch of its own holding only its own port,
	// with its own DHCP options and port group, and no router joins them:
	// the same addresses on both never meet.
	eventually(t, 20*time.Second, func() error {
		for _, c := range []struct{ net, port string }{{na.ID, pa.ID}, {nb.ID, pb.ID}} {
			if lsps := strings.TrimSpace(srv.NBCtl(t, "lsp-list", "keel-"+c.net)); !strings.Contains(lsps, c.port) || strings.Count(lsps, "\n") != 0 {
				return fmt.Errorf("switch of network %s holds %q; want its one port %s", c.net, lsps, c.port)
			}
		}
		return nil
	})
	if routers := strings.TrimSpace(srv.NBCtl(t, "lr-list")); routers != "" {
		t.Fatalf("a router joins the networks: %s", routers)
	}
	dhcp := strings.Fields(srv.NBCtl(t, "--bare", "--columns=external_ids", "find", "DHCP_Options", "cidr=10.0.0.0/24"))
	if got := strings.Count(strings.Join(dhcp, " "), "keel:network="); got != 2 {
		t.Fatalf("DHCP options of 10.0.0.0/24: %v; want one per network", dhcp)
	}
}

// Security groups: the default group comes with the first network and
// cannot be deleted; a group's rules are added, listed, refused when
// duplicated or malformed, and removed; a group with ports is not deleted.
func TestSecurityGroupsAndRules(t *testing.T) {
	e := start(t, nil)
	ctx := context.Background()
	e.addProject("alpha")
	alice := e.addUser("alice", "alpha", "member")
	n, _, seq := netOf(t, alice.c, "web", "10.0.0.0/24")
	dflt, _, err := api.Get[api.SecurityGroup](ctx, alice.c, api.Path(api.SecurityGroups, "default"), api.Opts{MinSequence: seq})
	if err != nil || !dflt.Default || len(dflt.Rules) != 2 {
		t.Fatalf("default group %+v, %v; want it with its two rules", dflt, err)
	}
	_, err = api.Delete(ctx, alice.c, api.Path(api.SecurityGroups, dflt.ID), api.Opts{}, nil)
	wantProblem(t, "delete the default group", err, http.StatusConflict, "default group")

	web, res, err := api.Create[api.SecurityGroup](ctx, alice.c, api.SecurityGroups, api.SecurityGroupBody{Name: "web", Description: "front ends"}, api.Opts{})
	if err != nil || len(web.Rules) != 1 || web.Rules[0].Direction != "egress" {
		t.Fatalf("new group %+v, %v; want one egress rule", web, err)
	}
	rules := api.Path(api.SecurityGroups, "web", "rules")
	https, _, err := api.Create[api.SecurityGroupRule](ctx, alice.c, rules, api.SecurityGroupRuleBody{Direction: "ingress", Protocol: "6", PortMin: 443, PortMax: 443}, api.Opts{MinSequence: res.Sequence})
	if err != nil || https.Protocol != "tcp" {
		t.Fatalf("add https = %+v, %v; want the rule, protocol tcp", https, err)
	}
	_, _, err = api.Create[api.SecurityGroupRule](ctx, alice.c, rules, api.SecurityGroupRuleBody{Direction: "ingress", Protocol: "tcp", PortMin: 443, PortMax: 443}, api.Opts{})
	wantProblem(t, "the same rule again", err, http.StatusConflict, "already has this rule")
	_, _, err = api.Create[api.SecurityGroupRule](ctx, alice.c, rules, api.SecurityGroupRuleBody{Direction: "ingress", Protocol: "icmp", PortMin: 22, PortMax: 22}, api.Opts{})
	wantProblem(t, "ports on icmp", err, http.StatusUnprocessableEntity, "tcp and udp only")
	_, _, err = api.Create[api.SecurityGroupRule](ctx, alice.c, rules, api.SecurityGroupRuleBody{Direction: "ingress", RemoteCIDR: "10.0.0.1/8"}, api.Opts{})
	wantProblem(t, "host bits in a remote CIDR", err, http.StatusUnprocessableEntity, "did you mean 10.0.0.0/8")
	fromDefault, res, err := api.Create[api.SecurityGroupRule](ctx, alice.c, rules, api.SecurityGroupRuleBody{Direction: "ingress", RemoteGroup: "default"}, api.Opts{})
	if err != nil || fromDefault.RemoteGroup != dflt.ID {
		t.Fatalf("rule from the default group = %+v, %v; want remote group %s", fromDefault, err, dflt.ID)
	}
	listed, _, err := api.Get[api.List[api.SecurityGroupRule]](ctx, alice.c, rules, api.Opts{MinSequence: res.Sequence})
	if err != nil || len(listed.Items) != 3 || listed.Items[1].ID != https.ID {
		t.Fatalf("rules %+v, %v; want egress, https, from default", listed.Items, err)
	}

	p, _, err := api.Create[api.Port](ctx, alice.c, api.Ports, api.PortBody{Network: n.ID, SecurityGroups: []string{"web"}}, api.Opts{})
	if err != nil || len(p.SecurityGroups) != 1 || p.SecurityGroups[0] != web.ID {
		t.Fatalf("port in web = %+v, %v", p.SecurityGroups, err)
	}
	_, err = api.Delete(ctx, alice.c, api.Path(api.SecurityGroups, "web"), api.Opts{MinSequence: e.headSeq()}, nil)
	wantProblem(t, "delete a group with a port", err, http.StatusConflict, "still has 1 port(s)")
	if _, err := api.Delete(ctx, alice.c, api.Path(rules, https.ID), api.Opts{}, nil); err != nil {
		t.Fatal(err)
	}
	e.rebuildAgrees("networks", "networks", "subnets", "subnet_addresses", "ports", "security_groups")
	del, err := api.Delete(ctx, alice.c, api.Path(api.Ports, p.ID), api.Opts{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.Delete(ctx, alice.c, api.Path(api.SecurityGroups, web.ID), api.Opts{MinSequence: del.Sequence}, nil); err != nil {
		t.Fatalf("delete the emptied group: %v", err)
	}
	_, _, err = api.Get[api.SecurityGroup](ctx, alice.c, api.Path(api.SecurityGroups, web.ID), api.Opts{MinSequence: e.headSeq()})
	wantProblem(t, "read the deleted group", err, http.StatusNotFound, "not found")
}

// Bad input is refused with a problem that says what is wrong; quotas
// refuse what is over them; a network with ports is not deleted; a create
// retried with its Idempotency-Key makes one port.
func TestNetworkInputQuotasAndRetries(t *testing.T) {
	e := start(t, nil)
	ctx := context.Background()
	e.addProject("alpha")
	alice := e.addUser("alice", "alpha", "member")
	n, _, err := api.Create[api.Network](ctx, alice.c, api.Networks, api.NetworkBody{Name: "web"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		body   api.SubnetBody
		status int
		detail string
	}{
		{"bad CIDR", api.SubnetBody{Network: n.ID, CIDR: "10.0.0/24"}, 422, "not an IPv4 network"},
		{"host bits", api.SubnetBody{Network: n.ID, CIDR: "10.0.0.1/24"}, 422, "did you mean 10.0.0.0/24"},
		{"gateway outside", api.SubnetBody{Network: n.ID, CIDR: "10.0.0.0/24", Gateway: "10.1.0.1"}, 422, "gateway 10.1.0.1 is not in 10.0.0.0/24"},
		{"overlapping pools", api.SubnetBody{Network: n.ID, CIDR: "10.0.0.0/24", Pools: []api.Pool{{Start: "10.0.0.10", End: "10.0.0.50"}, {Start: "10.0.0.40", End: "10.0.0.90"}}}, 422, "overlap"},
		{"unknown network", api.SubnetBody{Network: "nowhere", CIDR: "10.0.0.0/24"}, 422, "network nowhere not found"},
	} {
		_, _, err := api.Create[api.Subnet](ctx, alice.c, api.Subnets, c.body, api.Opts{})
		wantProblem(t, c.name, err, c.status, c.detail)
	}
	_, _, err = api.Create[api.Port](ctx, alice.c, api.Ports, api.PortBody{Network: n.ID}, api.Opts{})
	wantProblem(t, "a port on a network without a subnet", err, http.StatusConflict, "has no subnet")
	_, _, err = api.Create[api.Network](ctx, alice.c, api.Networks, api.NetworkBody{Name: "lan", Kind: "vlan", PhysicalNetwork: "physnet1", VLAN: 100}, api.Opts{})
	wantProblem(t, "a member makes a provider network", err, http.StatusForbidden, "made by cloud admins")
	_, _, err = api.Create[api.Network](ctx, e.api, api.Networks, api.NetworkBody{Name: "lan", Kind: "vlan", PhysicalNetwork: "physnet1"}, api.Opts{})
	wantProblem(t, "a vlan network without a VLAN id", err, http.StatusUnprocessableEntity, "a VLAN id must be between 1 and 4094, got 0")
	lan, _, err := api.Create[api.Network](ctx, e.api, api.Networks, api.NetworkBody{Name: "lan", Kind: "vlan", PhysicalNetwork: "physnet1", VLAN: 100}, api.Opts{})
	if err != nil {
		t.Fatalf("a cloud admin makes a provider network: %v", err)
	}
	// A provider segment carries one network: a second on VLAN 100 of
	// physnet1 is refused, VLAN 101 is not, nor VLAN 100 once the first
	// network is gone; a flat physical network likewise.
	_, _, err = api.Create[api.Network](ctx, e.api, api.Networks, api.NetworkBody{Name: "lan-2", Kind: "vlan", PhysicalNetwork: "physnet1", VLAN: 100}, api.Opts{})
	wantProblem(t, "a second network on one VLAN", err, http.StatusConflict, "VLAN 100 on physical network physnet1 is in use")
	if _, _, err := api.Create[api.Network](ctx, e.api, api.Networks, api.NetworkBody{Name: "lan-101", Kind: "vlan", PhysicalNetwork: "physnet1", VLAN: 101}, api.Opts{}); err != nil {
		t.Fatalf("another VLAN of the physical network: %v", err)
	}
	if _, _, err := api.Create[api.Network](ctx, e.api, api.Networks, api.NetworkBody{Name: "flat-a", Kind: "flat", PhysicalNetwork: "physnet2"}, api.Opts{}); err != nil {
		t.Fatalf("a flat network: %v", err)
	}
	_, _, err = api.Create[api.Network](ctx, e.api, api.Networks, api.NetworkBody{Name: "flat-b", Kind: "flat", PhysicalNetwork: "physnet2"}, api.Opts{})
	wantProblem(t, "a second flat network on one physical network", err, http.StatusConflict, "flat physical network physnet2 is in use")
	if _, err := api.Delete(ctx, e.api, api.Path(api.Networks, lan.ID), api.Opts{}, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.Create[api.Network](ctx, e.api, api.Networks, api.NetworkBody{Name: "lan-again", Kind: "vlan", PhysicalNetwork: "physnet1", VLAN: 100}, api.Opts{}); err != nil {
		t.Fatalf("VLAN 100 after its network was deleted: %v", err)
	}
	if _, _, err := api.Create[api.Subnet](ctx, alice.c, api.Subnets, api.SubnetBody{Network: n.ID, Name: "a", CIDR: "10.0.0.0/24"}, api.Opts{}); err != nil {
		t.Fatal(err)
	}
	_, _, err = api.Create[api.Subnet](ctx, alice.c, api.Subnets, api.SubnetBody{Network: n.ID, CIDR: "10.0.0.128/25"}, api.Opts{})
	wantProblem(t, "an overlapping subnet", err, http.StatusConflict, "overlaps subnet")

	// One port however often its create is retried with its key.
	body := api.PortBody{Network: n.ID, Name: "db", IP: "10.0.0.99"}
	first, _, err := api.Create[api.Port](ctx, alice.c, api.Ports, body, api.Opts{IdempotencyKey: "port-db"})
	if err != nil {
		t.Fatal(err)
	}
	second, res, err := api.Create[api.Port](ctx, alice.c, api.Ports, body, api.Opts{IdempotencyKey: "port-db"})
	if err != nil || second.ID != first.ID || !res.Replayed {
		t.Fatalf("retried create = %s (replayed %v), %v; want port %s again", second.ID, res != nil && res.Replayed, err, first.ID)
	}
	if u := quotaInUse(t, alice.c, "alpha"); u["ports"] != 1 || u["networks"] != 1 {
		t.Fatalf("in use %v; want 1 port, 1 network", u)
	}
	_, _, err = api.Create[api.Port](ctx, alice.c, api.Ports, api.PortBody{Network: n.ID, IP: "10.0.0.99"}, api.Opts{})
	wantProblem(t, "a taken address", err, http.StatusConflict, "already in use")
	_, err = api.Delete(ctx, alice.c, api.Path(api.Networks, "web"), api.Opts{MinSequence: e.headSeq()}, nil)
	wantProblem(t, "delete a network with a port", err, http.StatusConflict, "still has 1 port(s)")

	if _, err := e.api.Do(ctx, api.Request{Method: "PUT", Path: api.Path(api.Projects, "alpha", "quotas"), Body: api.QuotasBody{Limits: map[string]int{"ports": 1, "networks": 1}}}, nil); err != nil {
		t.Fatal(err)
	}
	_, _, err = api.Create[api.Port](ctx, alice.c, api.Ports, api.PortBody{Network: n.ID}, api.Opts{})
	wantProblem(t, "a port over the quota", err, http.StatusConflict, "quota exceeded")
	_, _, err = api.Create[api.Network](ctx, alice.c, api.Networks, api.NetworkBody{Name: "more"}, api.Opts{})
	wantProblem(t, "a network over the quota", err, http.StatusConflict, "quota exceeded")
	sub, _, err := api.Get[api.Subnet](ctx, alice.c, api.Path(api.Subnets, "a"), api.Opts{MinSequence: e.headSeq()})
	if err != nil || sub.InUse != 1 {
		t.Fatalf("subnet in use %d, %v; want 1 (a refused port takes no address)", sub.InUse, err)
	}
}

// The quota sweep tells a network's reservation from a server's: a real
// network keeps its reservation through many passes (it was taken for a
// server's and closed as one before), and a reservation whose network
// never came to be is given back.
func TestQuotaSweepKnowsNetworkHolds(t *testing.T) {
	e := start(t, func(c *node.Config) { c.QuotaGrace = 300 * time.Millisecond })
	ctx := context.Background()
	alpha := e.addProject("alpha")
	alice := e.addUser("alice", "alpha", "member")
	n, _, err := api.Create[api.Network](ctx, alice.c, api.Networks, api.NetworkBody{Name: "web"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	leftover := commands.DeriveID(commands.NewID(), "network")
	m := commands.Meta{CommandID: leftover + "/quota", Actor: domain.Actor{User: "alice", Project: alpha.ID}}
	if _, err := e.node.App.Projects.HandleBatched(ctx, alpha.ID, project.Reserve{Key: leftover, Amounts: commands.NetworkQuota, At: time.Now()}, m); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, func() error {
		if u := quotaInUse(t, alice.c, "alpha"); u["networks"] != 1 {
			return fmt.Errorf("networks in use %d; want the real network's 1", u["networks"])
		}
		return nil
	})
	time.Sleep(time.Second) // more passes: nothing to wait on when nothing happens
	if u := quotaInUse(t, alice.c, "alpha"); u["networks"] != 1 {
		t.Fatalf("networks in use %d after more passes; want 1", u["networks"])
	}
	st, _, err := e.node.App.Networks.LoadLatest(ctx, n.ID)
	if err != nil || !st.Live() {
		t.Fatalf("the real network %+v, %v; want it live", st, err)
	}
	if sv, _, err := e.node.App.Servers.LoadLatest(ctx, n.ID); err != nil || sv.Abandoned {
		t.Fatalf("the network's id was abandoned as a server's (%v)", err)
	}
}

// A project that owns networking resources is not deleted; once they are
// gone it is, and its default security group with it.
func TestProjectDeleteWaitsForItsNetworks(t *testing.T) {
	e := start(t, nil)
	ctx := context.Background()
	e.addProject("alpha")
	alice := e.addUser("alice", "alpha", "member")
	n, s, _ := netOf(t, alice.c, "web", "10.0.0.0/24")
	r, _, err := api.Create[api.Router](ctx, alice.c, api.Routers, api.RouterBody{Name: "edge"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = api.Delete(ctx, e.api, api.Path(api.Projects, "alpha"), api.Opts{MinSequence: e.headSeq()}, nil)
	wantProblem(t, "delete a project with a network and a router", err, http.StatusConflict, "1 networks")
	wantProblem(t, "delete a project with a network and a router", err, http.StatusConflict, "1 routers")
	for _, path := range []string{api.Path(api.Routers, r.ID), api.Path(api.Subnets, s.ID), api.Path(api.Networks, n.ID)} {
		if _, err := api.Delete(ctx, alice.c, path, api.Opts{}, nil); err != nil {
			t.Fatal(err)
		}
	}
	// A create racing with the delete: its reservation (its first commit)
	// is in, its network not yet, so the read model shows nothing; the
	// project's own decider refuses the delete.
	alpha, _, err := api.Get[api.Project](ctx, e.api, api.Path(api.Projects, "alpha"), api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	key := commands.NewID()
	meta := commands.Meta{CommandID: key, Actor: domain.Actor{User: "alice", Project: alpha.ID}}
	if _, err := e.node.App.Projects.HandleBatched(ctx, alpha.ID, project.Reserve{Key: key, Amounts: commands.NetworkQuota, At: time.Now()}, meta); err != nil {
		t.Fatal(err)
	}
	_, err = api.Delete(ctx, e.api, api.Path(api.Projects, "alpha"), api.Opts{MinSequence: e.headSeq()}, nil)
	wantProblem(t, "delete a project while a create holds a reservation", err, http.StatusConflict, "still holds 1 networks")
	meta.CommandID = key + "/release"
	if _, err := e.node.App.Projects.HandleBatched(ctx, alpha.ID, project.Release{Key: key, Amounts: commands.NetworkQuota, At: time.Now()}, meta); err != nil {
		t.Fatal(err)
	}
	res, err := api.Delete(ctx, e.api, api.Path(api.Projects, "alpha"), api.Opts{MinSequence: e.headSeq()}, nil)
	if err != nil {
		t.Fatalf("delete the emptied project: %v", err)
	}
	groups, _, err := api.Get[api.List[api.SecurityGroup]](ctx, e.api, api.SecurityGroups, api.Opts{MinSequence: e.headSeq(),
		Query: map[string][]string{"all_projects": {"true"}}})
	if err != nil || len(groups.Items) != 0 {
		t.Fatalf("security groups after the project's delete (seq %d): %+v, %v; want none", res.Sequence, groups.Items, err)
	}
}

// rebuildAgrees rebuilds a projection from the log and checks that its
// tables hold the same rows as before.
func (e *env) rebuildAgrees(projection string, tables ...string) {
	e.t.Helper()
	if _, _, err := api.Get[api.List[api.Network]](context.Background(), e.api, api.Networks, api.Opts{MinSequence: e.headSeq()}); err != nil {
		e.t.Fatal(err)
	}
	rows := func() map[string][]string {
		out := map[string][]string{}
		for _, table := range tables {
			r, err := e.node.Pool.Query(context.Background(), `SELECT to_jsonb(t)::text FROM `+table+` t ORDER BY 1`)
			if err != nil {
				e.t.Fatal(err)
			}
			for r.Next() {
				var row string
				if err := r.Scan(&row); err != nil {
					e.t.Fatal(err)
				}
				out[table] = append(out[table], row)
			}
			r.Close()
		}
		return out
	}
	before := rows()
	e.must(http.StatusOK, e.call("POST", "/v1/projections/"+projection+"/rebuild", nil))
	after := rows()
	for _, table := range tables {
		if !slices.Equal(before[table], after[table]) {
			e.t.Errorf("table %s differs after a rebuild:\nbefore %v\nafter  %v", table, before[table], after[table])
		}
	}
	if len(before[tables[0]]) == 0 {
		e.t.Fatalf("nothing to compare: %s is empty", tables[0])
	}
}

// A port's security groups are replaced through the API (as a member, on
// her own port): the port reads its new groups, the group's port list
// follows, and in OVN the port leaves the old group's Port_Group and joins
// the new one's. Unknown groups, another project's port, duplicates and
// groups on a port without port security are refused.
func TestPortSecurityGroupsAreReplaced(t *testing.T) {
	srv := ovntest.Start(t)
	e := start(t, func(c *node.Config) { c.OVN = node.OVNConfig{NB: srv.NB, Reconcile: time.Minute} })
	ctx := context.Background()
	e.addProject("alpha")
	e.addProject("beta")
	alice, bob := e.addUser("alice", "alpha", "member"), e.addUser("bob", "beta", "member")
	netOf(t, alice.c, "web", "10.0.0.0/24")
	p, _, err := api.Create[api.Port](ctx, alice.c, api.Ports, api.PortBody{Network: "web", Name: "vm"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	dflt := p.SecurityGroups[0]
	web, _, err := api.Create[api.SecurityGroup](ctx, alice.c, api.SecurityGroups, api.SecurityGroupBody{Name: "web"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	members := func(group string) string {
		return srv.NBCtl(t, "--bare", "--columns=ports", "find", "Port_Group", "name="+ovn.PortGroupName(group))
	}
	lsp := func() string {
		return strings.TrimSpace(srv.NBCtl(t, "--bare", "--columns=_uuid", "find", "Logical_Switch_Port", "name="+p.ID))
	}
	eventually(t, 20*time.Second, func() error {
		if u := lsp(); u == "" || !strings.Contains(members(dflt), u) {
			return fmt.Errorf("port %s (%q) not yet in the default group's Port_Group (%q)", p.ID, u, members(dflt))
		}
		return nil
	})

	var got api.Port
	res, err := put(ctx, alice.c, api.Path(api.Ports, "vm", "security-groups"), api.PortSecurityGroupsBody{SecurityGroups: []string{"web"}}, &got)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.SecurityGroups, []string{web.ID}) {
		t.Fatalf("port after the change is in %v; want only %s", got.SecurityGroups, web.ID)
	}
	in, err := api.ListAll[api.Port](ctx, alice.c, api.Ports, api.Opts{MinSequence: res.Sequence, Query: url.Values{"security_group": {"web"}}})
	if err != nil || len(in) != 1 || in[0].ID != p.ID {
		t.Fatalf("ports of group web: %+v %v; want the port", in, err)
	}
	eventually(t, 20*time.Second, func() error {
		u := lsp()
		if !strings.Contains(members(web.ID), u) || strings.Contains(members(dflt), u) {
			return fmt.Errorf("in OVN the port is in web's group: %v, in the default group: %v; want web's only",
				strings.Contains(members(web.ID), u), strings.Contains(members(dflt), u))
		}
		return nil
	})

	_, err = put(ctx, alice.c, api.Path(api.Ports, p.ID, "security-groups"), api.PortSecurityGroupsBody{SecurityGroups: []string{"nosuch"}}, nil)
	wantProblem(t, "an unknown group", err, http.StatusUnprocessableEntity, "nosuch")
	_, err = put(ctx, alice.c, api.Path(api.Ports, p.ID, "security-groups"), api.PortSecurityGroupsBody{SecurityGroups: []string{"web", web.ID}}, nil)
	wantProblem(t, "a group twice", err, http.StatusUnprocessableEntity, "listed twice")
	_, err = put(ctx, bob.c, api.Path(api.Ports, p.ID, "security-groups"), api.PortSecurityGroupsBody{SecurityGroups: []string{}}, nil)
	wantProblem(t, "bob changes alice's port", err, http.StatusNotFound, "not found")
	off := false
	open, _, err := api.Create[api.Port](ctx, alice.c, api.Ports, api.PortBody{Network: "web", PortSecurity: &off}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = put(ctx, alice.c, api.Path(api.Ports, open.ID, "security-groups"), api.PortSecurityGroupsBody{SecurityGroups: []string{"web"}}, nil)
	wantProblem(t, "groups on a port without port security", err, http.StatusUnprocessableEntity, "port security is off")
	// No group at all: the port leaves web's group too.
	if _, err := put(ctx, alice.c, api.Path(api.Ports, p.ID, "security-groups"), api.PortSecurityGroupsBody{SecurityGroups: []string{}}, &got); err != nil || len(got.SecurityGroups) != 0 {
		t.Fatalf("no groups: %+v %v", got.SecurityGroups, err)
	}
	eventually(t, 20*time.Second, func() error {
		if strings.Contains(members(web.ID), lsp()) {
			return errors.New("the port is still in web's Port_Group")
		}
		return nil
	})
}
