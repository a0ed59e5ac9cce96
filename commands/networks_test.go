package commands_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/project"
	"github.com/keel-cloud/keel/domain/secgroup"
)

// netWorld is an App on the real store with a project p and a network
// with a /29 subnet (five addresses for ports once the gateway is set
// apart); m makes a member's command of p.
func netWorld(t *testing.T) (a *commands.App, p, netID, subnetID string, m func(id string) commands.Meta) {
	t.Helper()
	s := openStore(t)
	ctx := ctxT(t)
	a = commands.NewApp(s)
	p = commands.NewID()
	if _, err := a.Projects.Create(ctx, p, project.Create{ID: project.ID(p), Name: "alpha"}, meta("project")); err != nil {
		t.Fatal(err)
	}
	m = func(id string) commands.Meta {
		return commands.Meta{CommandID: id, Actor: domain.Actor{User: "alice", Project: p}, Scope: p}
	}
	n, err := a.CreateNetwork(ctx, commands.CreateNetworkRequest{Name: "web"}, m("net"))
	if err != nil {
		t.Fatal(err)
	}
	sn, err := a.CreateSubnet(ctx, commands.CreateSubnetRequest{Network: string(n.State.ID), CIDR: "10.0.0.0/29"}, m("subnet"))
	if err != nil {
		t.Fatal(err)
	}
	return a, p, string(n.State.ID), string(sn.State.ID), m
}

func used(t *testing.T, a *commands.App, p string) map[string]int {
	t.Helper()
	st, _, err := a.Projects.LoadLatest(ctxT(t), p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Used
}

// Concurrent port creates on a small subnet get distinct addresses, never
// the gateway; the rest are refused "subnet exhausted" and hold nothing;
// a deleted port's address and quota come back; a retried create is the
// same port.
func TestPortsGetDistinctAddressesUntilTheSubnetIsExhausted(t *testing.T) {
	a, p, netID, subnetID, m := netWorld(t)
	ctx := ctxT(t)
	var (
		mu     sync.Mutex
		ips    = map[string]string{}
		wg     sync.WaitGroup
		refuse []error
	)
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := a.CreatePort(ctx, commands.CreatePortRequest{Network: netID}, m(fmt.Sprint("port-", i)))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				refuse = append(refuse, err)
				return
			}
			ips[res.State.FixedIPs[0].IP] = string(res.State.ID)
		}()
	}
	wg.Wait()
	if len(ips) != 5 || len(refuse) != 7 {
		t.Fatalf("%d ports with distinct addresses %v and %d refusals; want 5 and 7", len(ips), ips, len(refuse))
	}
	if _, ok := ips["10.0.0.1"]; ok {
		t.Fatalf("a port got the gateway: %v", ips)
	}
	for _, err := range refuse {
		if domain.KindOf(err) != domain.Conflict || !strings.Contains(err.Error(), "subnet exhausted") {
			t.Fatalf("refusal %v; want a conflict saying subnet exhausted", err)
		}
	}
	if u := used(t, a, p); u[project.QuotaPorts] != 5 {
		t.Fatalf("ports in use %d; want 5 (the refused ones hold no quota)", u[project.QuotaPorts])
	}
	sn, _, _ := a.Subnets.LoadLatest(ctx, subnetID)
	if sn.InUse != 5 {
		t.Fatalf("subnet has %d addresses in use; want 5", sn.InUse)
	}

	victim := ips["10.0.0.3"]
	if _, err := a.DeletePort(ctx, victim, m("delete")); err != nil {
		t.Fatal(err)
	}
	again, err := a.CreatePort(ctx, commands.CreatePortRequest{Network: netID}, m("port-again"))
	if err != nil || again.State.FixedIPs[0].IP != "10.0.0.3" {
		t.Fatalf("create after a delete = %+v, %v; want the freed 10.0.0.3", again.State.FixedIPs, err)
	}
	retry, err := a.CreatePort(ctx, commands.CreatePortRequest{Network: netID}, m("port-again"))
	if err != nil || retry.State.ID != again.State.ID || !retry.Duplicate {
		t.Fatalf("retried create = %s (duplicate %v), %v; want port %s again", retry.State.ID, retry.Duplicate, err, again.State.ID)
	}
	if u := used(t, a, p); u[project.QuotaPorts] != 5 {
		t.Fatalf("ports in use %d after a delete, a create and its retry; want 5", u[project.QuotaPorts])
	}
}

// A port gets a stable locally administered MAC and the project's default
// group, made on first need, with Neutron's default rules.
func TestPortDefaultsAndTheDefaultGroup(t *testing.T) {
	a, p, netID, _, m := netWorld(t)
	ctx := ctxT(t)
	res, err := a.CreatePort(ctx, commands.CreatePortRequest{Network: netID, IP: "10.0.0.6"}, m("port"))
	if err != nil {
		t.Fatal(err)
	}
	st := res.State
	if st.MAC != commands.PortMAC(string(st.ID)) || !strings.HasPrefix(st.MAC, "fa:16:3e:") {
		t.Fatalf("MAC %s; want fa:16:3e:… derived from the id", st.MAC)
	}
	if st.FixedIPs[0].IP != "10.0.0.6" {
		t.Fatalf("fixed IPs %v; want the asked 10.0.0.6", st.FixedIPs)
	}
	dflt := commands.DefaultSecurityGroupID(p)
	if len(st.SecurityGroups) != 1 || st.SecurityGroups[0] != dflt {
		t.Fatalf("groups %v; want the default %s", st.SecurityGroups, dflt)
	}
	g, _, err := a.SecurityGroups.LoadLatest(ctx, dflt)
	if err != nil || !g.Default || len(g.Rules) != 2 || g.Rules[1].RemoteGroup != dflt {
		t.Fatalf("default group %+v, %v; want all egress and ingress from itself", g, err)
	}
	if _, err := a.DeleteSecurityGroup(ctx, dflt, m("delete-default")); domain.KindOf(err) != domain.Conflict {
		t.Fatalf("delete the default group: %v; want a conflict", err)
	}
	_, err = a.CreatePort(ctx, commands.CreatePortRequest{Network: netID, IP: "10.0.0.6"}, m("port-2"))
	if domain.KindOf(err) != domain.Conflict || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("a second port on 10.0.0.6: %v; want a conflict", err)
	}
	_, err = a.CreatePort(ctx, commands.CreatePortRequest{Network: netID, SecurityGroups: []string{commands.NewID()}}, m("port-3"))
	if domain.KindOf(err) != domain.Invalid || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("a port in an unknown group: %v; want invalid", err)
	}
	if u := used(t, a, p); u[project.QuotaPorts] != 1 {
		t.Fatalf("ports in use %d; want 1 (refused creates give theirs back)", u[project.QuotaPorts])
	}
}

// Subnets of one network must not overlap; a network with subnets, or a
// subnet with ports, is not deleted; quotas bound networks and groups.
func TestNetworkRulesAndQuotas(t *testing.T) {
	a, p, netID, subnetID, m := netWorld(t)
	ctx := ctxT(t)
	_, err := a.CreateSubnet(ctx, commands.CreateSubnetRequest{Network: netID, CIDR: "10.0.0.0/24"}, m("overlap"))
	if domain.KindOf(err) != domain.Conflict || !strings.Contains(err.Error(), "overlaps") {
		t.Fatalf("overlapping subnet: %v; want a conflict", err)
	}
	_, err = a.CreateSubnet(ctx, commands.CreateSubnetRequest{Network: netID, CIDR: "10.1.0.0/24", Gateway: "10.2.0.1"}, m("gw"))
	if domain.KindOf(err) != domain.Invalid || !strings.Contains(err.Error(), "is not in 10.1.0.0/24") {
		t.Fatalf("gateway outside: %v; want invalid", err)
	}
	n, _, _ := a.Networks.LoadLatest(ctx, netID)
	if len(n.Subnets) != 1 {
		t.Fatalf("network lists %v after refused subnets; want only %s", n.Subnets, subnetID)
	}
	if _, err := a.DeleteNetwork(ctx, netID, m("del-net")); domain.KindOf(err) != domain.Conflict {
		t.Fatalf("delete a network with a subnet: %v; want a conflict", err)
	}
	pt, err := a.CreatePort(ctx, commands.CreatePortRequest{Network: netID}, m("port"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.DeleteSubnet(ctx, subnetID, m("del-sub")); domain.KindOf(err) != domain.Conflict {
		t.Fatalf("delete a subnet with a port: %v; want a conflict", err)
	}
	if _, err := a.DeletePort(ctx, string(pt.State.ID), m("del-port")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.DeleteSubnet(ctx, subnetID, m("del-sub-2")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.DeleteNetwork(ctx, netID, m("del-net-2")); err != nil {
		t.Fatal(err)
	}
	if u := used(t, a, p); u[project.QuotaNetworks] != 0 || u[project.QuotaPorts] != 0 {
		t.Fatalf("in use after deleting everything: %v", u)
	}

	if _, err := a.Projects.Handle(ctx, p, project.SetQuotas{Limits: map[string]int{project.QuotaNetworks: 1, project.QuotaSecurityGroups: 1}}, meta("quotas")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateNetwork(ctx, commands.CreateNetworkRequest{Name: "one"}, m("n1")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateNetwork(ctx, commands.CreateNetworkRequest{Name: "two"}, m("n2")); domain.KindOf(err) != domain.Conflict || !strings.Contains(err.Error(), "quota exceeded") {
		t.Fatalf("a second network over a quota of 1: %v; want quota exceeded", err)
	}
	web, err := a.CreateSecurityGroup(ctx, "web", "", m("sg1"))
	if err != nil || len(web.State.Rules) != 1 || web.State.Rules[0].Direction != secgroup.Egress {
		t.Fatalf("new group %+v, %v; want one egress rule", web.State, err)
	}
	if _, err := a.CreateSecurityGroup(ctx, "db", "", m("sg2")); !strings.Contains(fmt.Sprint(err), "quota exceeded") {
		t.Fatalf("a second group over a quota of 1: %v; want quota exceeded (the default group counts for none)", err)
	}
	_, rule, err := a.AddSecurityGroupRule(ctx, string(web.State.ID), secgroup.Rule{Direction: secgroup.Ingress, Protocol: "6", PortMin: 22, PortMax: 22}, m("rule"))
	if err != nil || rule.Protocol != secgroup.TCP {
		t.Fatalf("add rule = %+v, %v; want it normalised to tcp", rule, err)
	}
	if _, _, err := a.AddSecurityGroupRule(ctx, string(web.State.ID), secgroup.Rule{Direction: secgroup.Ingress, Protocol: "tcp", PortMin: 22, PortMax: 22}, m("rule-2")); domain.KindOf(err) != domain.Conflict {
		t.Fatalf("the same rule again: %v; want a conflict", err)
	}
	if _, err := a.RemoveSecurityGroupRule(ctx, string(web.State.ID), rule.ID, m("unrule")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.DeleteSecurityGroup(ctx, string(web.State.ID), m("del-sg")); err != nil {
		t.Fatal(err)
	}
	if u := used(t, a, p); u[project.QuotaSecurityGroups] != 0 {
		t.Fatalf("groups in use after the delete: %v", u)
	}
}

// Overlapping subnets created at once on one network: one is made, the
// others are refused by the network's commit and leave nothing behind.
func TestConcurrentOverlappingSubnets(t *testing.T) {
	a, _, netID, _, m := netWorld(t)
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = a.CreateSubnet(ctx, commands.CreateSubnetRequest{Network: netID, CIDR: fmt.Sprintf("10.1.%d.0/24", i%2)}, m(fmt.Sprint("sub-", i)))
		}()
	}
	wg.Wait()
	made := 0
	for _, err := range errs {
		switch {
		case err == nil:
			made++
		case domain.KindOf(err) != domain.Conflict || !strings.Contains(err.Error(), "overlaps"):
			t.Fatalf("refusal %v; want a conflict saying overlaps", err)
		}
	}
	n, _, _ := a.Networks.LoadLatest(ctx, netID)
	if made != 2 || len(n.Subnets) != 3 {
		t.Fatalf("%d subnets made, network lists %v; want 10.1.0.0/24 and 10.1.1.0/24 once each beside the first", made, n.Subnets)
	}
}
