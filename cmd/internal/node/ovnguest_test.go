package node_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keel-cloud/keel/adapters/libvirt/lvtest"
	"github.com/keel-cloud/keel/adapters/ovn/ovntest"
	"github.com/keel-cloud/keel/adapters/postgres/pgtest"
	"github.com/keel-cloud/keel/api"
)

// Real guests on an OVN network, the way a user gets them: keel serve with
// the network adapter on a private OVN (NB, SB, ovn-northd, ovs-vswitchd with
// the userspace datapath, ovn-controller), a keel agent with the libvirt
// driver, a network and subnet made through the API, and two servers on
// it. Each gets its port's address from OVN's DHCP; the second pings the
// first. Removing the default security group's rule that lets its members
// reach each other stops the ping; an ICMP rule brings it back. Deleting
// the servers deletes their ports: no switch port is left in the NB and no
// tap on br-int. A router with an interface on the subnet answers the
// first guest's pings of its DHCP router; with a gateway on an external
// network, a floating IP associated with the first guest's port becomes the
// router's dnat_and_snat rule to its address, and goes when disassociated.
// An interface attached to a running guest is bound and
// plugged live, and the guest gets its address over it from OVN's DHCP;
// detached, its switch port and tap go.
func TestRealGuestsOnAnOVNNetwork(t *testing.T) {
	if testing.Short() {
		t.Skip("boots two real guests")
	}
	srv := ovntest.Start(t, ovntest.WithNorthd())
	dp := srv.StartDataPlane(t)
	lv := lvtest.Start(t, lvtest.WithOpenVSwitch(dp.RunDir))
	guest := lvtest.GuestImage(t)
	bin := buildKeel(t)
	natsAddr, dataDir, agentDir := freeAddr(t), t.TempDir(), filepath.Join(lv.Dir, "agent")
	p := serve(t, bin, dataDir, pgtest.NewDatabase(t), freeAddr(t), "--fake-hosts", "0", "--nats-listen", natsAddr,
		"--ovn-nb", srv.NB, "--ovn-reconcile", "5s", "--ovn-gateway-chassis", ovntest.Chassis)
	defer func() { _ = p.cmd.Process.Signal(syscall.SIGINT); _ = p.cmd.Wait() }()
	agentLog := &syncBuffer{}
	creds := issueCredentials(t, bin, p.url, p.token, "node-a")
	a := exec.Command(bin, "agent", "--driver", "libvirt", "--libvirt-uri", "qemu:///system?socket="+lv.Socket,
		"--data-dir", agentDir, "--nats", "nats://"+natsAddr, "--credentials", creds, "--heartbeat", "500ms", "--stop-timeout", "5s")
	a.Stdout, a.Stderr = agentLog, agentLog
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { interrupt(t, "the agent", a, agentLog) }()
	defer func() {
		if t.Failed() {
			t.Logf("serve:\n%s\nagent:\n%s", p.log, agentLog)
		}
	}()
	c := p.client()
	ctx := context.Background()
	eventually(t, 30*time.Second, func() error {
		h, _, err := api.Get[api.Host](ctx, c, api.Path(api.Hosts, "node-a"), api.Opts{})
		if err != nil || h.State != "up" {
			return fmt.Errorf("host %+v, %v", h, err)
		}
		return nil
	})
	if _, _, err := api.Create[api.Flavor](ctx, c, api.Flavors, api.FlavorBody{Name: "tiny", VCPUs: 1, RAMMiB: 256, DiskGiB: 1}, api.Opts{}); err != nil {
		t.Fatal(err)
	}
	up := uploadGuest(t, c, guest)
	net, _, err := api.Create[api.Network](ctx, c, api.Networks, api.NetworkBody{Name: "blue"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	sub, res, err := api.Create[api.Subnet](ctx, c, api.Subnets, api.SubnetBody{Network: "blue", CIDR: "10.0.0.0/24"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	seq := max(up.Sequence, res.Sequence)
	// The subnet's router: the guests' DHCP router, which the first pings.
	rt, _, err := api.Create[api.Router](ctx, c, api.Routers, api.RouterBody{Name: "edge"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	if _, res, err = api.Create[api.Router](ctx, c, api.Path(api.Routers, rt.ID, "interfaces"), api.RouterInterfaceBody{Subnet: sub.ID}, api.Opts{}); err != nil {
		t.Fatal(err)
	}
	seq = max(seq, res.Sequence)

	create := func(name, userData string) api.Server {
		t.Helper()
		acc, _, err := api.Create[api.Accepted](ctx, c, api.Servers, api.ServerBody{Name: name, Flavor: "tiny", Image: "keel-test-guest",
			UserData: base64.StdEncoding.EncodeToString([]byte(userData)), Networks: []api.ServerNetwork{{Network: "blue"}}}, api.Opts{MinSequence: seq})
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		var s api.Server
		eventually(t, 3*time.Minute, func() error {
			if s, _, err = api.Get[api.Server](ctx, c, api.Path(api.Servers, acc.Server.ID), api.Opts{}); err != nil {
				return err
			}
			if s.Status == "ERROR" {
				t.Fatalf("server %s in ERROR: %v", name, deref(s.Reason))
			}
			if s.Status != "ACTIVE" || len(s.Addresses) != 1 {
				return fmt.Errorf("server %s is %s with addresses %v", name, s.Status, s.Addresses)
			}
			return nil
		})
		return s
	}
	// seen counts line on s's console now.
	seen := func(s api.Server, line string) int {
		t.Helper()
		log, err := api.ConsoleLog(ctx, c, s.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Count(strings.ReplaceAll(string(log), "\r", ""), line+"\n")
	}
	console := func(s api.Server, line string, n int, within time.Duration) {
		t.Helper()
		eventually(t, within, func() error {
			log, err := api.ConsoleLog(ctx, c, s.ID, 0)
			if err != nil {
				return err
			}
			if got := strings.Count(strings.ReplaceAll(string(log), "\r", ""), line+"\n"); got < n {
				return fmt.Errorf("%q %d times on %s's console, want %d; it holds:\n%s", line, got, s.Name, n, log)
			}
			return nil
		})
	}

	vm1 := create("vm-1", "#!/bin/sh\n")
	ip1 := vm1.Addresses[0]
	if !strings.HasPrefix(ip1, "10.0.0.") || ip1 == "10.0.0.1" {
		t.Fatalf("vm-1's address %s is not one of the subnet's to give", ip1)
	}
	vm2 := create("vm-2", "keel-test: ping "+ip1+"\n")
	// Each port is a switch port the adapter wrote, bound by ovn-controller
	// to the tap libvirt plugged into br-int.
	for _, s := range []api.Server{vm1, vm2} {
		nic := s.NICs[0]
		if nic.NetworkID != net.ID {
			t.Fatalf("%s's NIC is on %s, want %s", s.Name, nic.NetworkID, net.ID)
		}
		dp.WaitBound(t, nic.PortID, time.Minute)
		if addrs := strings.TrimSpace(srv.NBCtl(t, "lsp-get-addresses", nic.PortID)); addrs != nic.MAC+" "+nic.IPs[0] {
			t.Fatalf("%s's switch port has addresses %q, want %q", s.Name, addrs, nic.MAC+" "+nic.IPs[0])
		}
		console(s, "KEEL-GUEST ip: eth0 "+nic.IPs[0]+"/24", 1, 3*time.Minute)
	}
	console(vm2, "KEEL-GUEST ping "+ip1+": ok", 1, time.Minute)
	console(vm1, "KEEL-GUEST ping 10.0.0.1: ok", 1, time.Minute)
	floatingIPBecomesNAT(t, c, srv, rt.ID, vm1)

	// The default group lets its members reach each other: without that
	// rule vm-1 drops the pings; an ICMP rule from the group lets them in.
	groups, err := api.ListAll[api.SecurityGroup](ctx, c, api.SecurityGroups, api.Opts{Query: url.Values{"name": {"default"}}})
	if err != nil || len(groups) != 1 {
		t.Fatalf("the project's default group: %+v, %v", groups, err)
	}
	g := groups[0]
	var within string
	for _, r := range g.Rules {
		if r.Direction == "ingress" && r.RemoteGroup == g.ID {
			within = r.ID
		}
	}
	if within == "" {
		t.Fatalf("the default group has no rule for its members: %+v", g.Rules)
	}
	// The pinger may have said "lost" before vm-1 first answered: count
	// from what it has said so far.
	lost, ok := seen(vm2, "KEEL-GUEST ping "+ip1+": lost"), seen(vm2, "KEEL-GUEST ping "+ip1+": ok")
	if _, err := c.Do(ctx, api.Request{Method: http.MethodDelete, Path: api.Path(api.SecurityGroups, g.ID, "rules", within)}, nil); err != nil {
		t.Fatal(err)
	}
	console(vm2, "KEEL-GUEST ping "+ip1+": lost", lost+1, time.Minute)
	if _, _, err := api.Create[api.SecurityGroupRule](ctx, c, api.Path(api.SecurityGroups, g.ID, "rules"),
		api.SecurityGroupRuleBody{Direction: "ingress", Protocol: "icmp", RemoteGroup: g.ID}, api.Opts{}); err != nil {
		t.Fatal(err)
	}
	console(vm2, "KEEL-GUEST ping "+ip1+": ok", ok+1, time.Minute)

	// An interface attached to the running vm-1 through the API: its port
	// is a switch port bound to a tap libvirt plugged live; detached, both
	// go. One attached again goes with the server.
	iface := func(method, path string, body any) api.Server {
		t.Helper()
		var acc api.Accepted
		if _, err := c.Do(ctx, api.Request{Method: method, Path: path, Body: body}, &acc); err != nil {
			t.Fatal(err)
		}
		eventually(t, 2*time.Minute, func() error {
			op, _, err := api.Get[api.Operation](ctx, c, api.Path(api.Operations, acc.OperationID), api.Opts{})
			switch {
			case err != nil:
				return err
			case op.Status == "failed":
				t.Fatalf("%s %s failed: %v", method, path, deref(op.Error))
			case op.Status != "succeeded":
				return fmt.Errorf("%s %s is %s", method, path, op.Status)
			}
			return nil
		})
		s, _, err := api.Get[api.Server](ctx, c, api.Path(api.Servers, vm1.ID), api.Opts{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	onBridge := func(port string) bool {
		return strings.TrimSpace(dp.VSCtl(t, "--bare", "--columns=name", "find", "Interface", "external_ids:iface-id="+port)) != ""
	}
	s1 := iface(http.MethodPost, api.Path(api.Servers, vm1.ID, "interfaces"), api.InterfaceBody{Network: "blue"})
	if len(s1.NICs) != 2 || len(s1.NICs[1].IPs) != 1 {
		t.Fatalf("vm-1 after the attach: NICs %+v", s1.NICs)
	}
	eth1 := s1.NICs[1]
	dp.WaitBound(t, eth1.PortID, time.Minute)
	// The guest uses it: it gets its address over it, from OVN's DHCP.
	console(vm1, "KEEL-GUEST ip: eth1 "+eth1.IPs[0]+"/24", 1, 2*time.Minute)
	if addrs := strings.TrimSpace(srv.NBCtl(t, "lsp-get-addresses", eth1.PortID)); addrs != eth1.MAC+" "+eth1.IPs[0] {
		t.Fatalf("the attached port's switch port has addresses %q, want %q", addrs, eth1.MAC+" "+eth1.IPs[0])
	}
	s1 = iface(http.MethodDelete, api.Path(api.Servers, vm1.ID, "interfaces", eth1.PortID), nil)
	if len(s1.NICs) != 1 || onBridge(eth1.PortID) {
		t.Fatalf("vm-1 after the detach: NICs %+v, tap on br-int %v", s1.NICs, onBridge(eth1.PortID))
	}
	eventually(t, 30*time.Second, func() error {
		if lsps := srv.NBCtl(t, "--bare", "--columns=name", "find", "Logical_Switch_Port", "name="+eth1.PortID); strings.TrimSpace(lsps) != "" {
			return fmt.Errorf("the detached port's switch port is still in the NB")
		}
		return nil
	})
	if s1 = iface(http.MethodPost, api.Path(api.Servers, vm1.ID, "interfaces"), api.InterfaceBody{Network: net.ID}); len(s1.NICs) != 2 {
		t.Fatalf("vm-1 after the second attach: NICs %+v", s1.NICs)
	}
	dp.WaitBound(t, s1.NICs[1].PortID, time.Minute)

	// Deleting the servers deletes their ports, in the API and in the NB,
	// and libvirt unplugs their taps.
	for _, s := range []api.Server{vm1, vm2} {
		var del api.Accepted
		if _, err := c.Do(ctx, api.Request{Method: http.MethodDelete, Path: api.Path(api.Servers, s.ID)}, &del); err != nil {
			t.Fatal(err)
		}
		eventually(t, 2*time.Minute, func() error {
			op, _, err := api.Get[api.Operation](ctx, c, api.Path(api.Operations, del.OperationID), api.Opts{})
			switch {
			case err != nil:
				return err
			case op.Status == "failed":
				t.Fatalf("delete %s failed: %v", s.Name, deref(op.Error))
			case op.Status != "succeeded":
				return fmt.Errorf("delete %s is %s", s.Name, op.Status)
			}
			return nil
		})
	}
	// The router goes: its interface's port with it.
	var last uint64
	for _, path := range []string{api.Path(api.Routers, rt.ID, "interfaces", sub.ID), api.Path(api.Routers, rt.ID)} {
		res, err := api.Delete(ctx, c, path, api.Opts{}, nil)
		if err != nil {
			t.Fatalf("DELETE %s: %v", path, err)
		}
		last = res.Sequence
	}
	eventually(t, 30*time.Second, func() error {
		if lrs := strings.TrimSpace(srv.NBCtl(t, "lr-list")); lrs != "" {
			return fmt.Errorf("routers left in the NB: %s", lrs)
		}
		ports, err := api.ListAll[api.Port](ctx, c, api.Ports, api.Opts{})
		if err != nil {
			return err
		}
		if len(ports) != 0 {
			return fmt.Errorf("ports left after the servers' delete: %+v", ports)
		}
		if lsps := strings.TrimSpace(srv.NBCtl(t, "lsp-list", "keel-"+net.ID)); lsps != "" {
			return fmt.Errorf("switch ports left in the NB: %s", lsps)
		}
		if taps := strings.TrimSpace(dp.VSCtl(t, "list-ports", "br-int")); taps != "" {
			return fmt.Errorf("taps left on br-int: %s", taps)
		}
		return nil
	})
	s, _, err := api.Get[api.Subnet](ctx, c, api.Path(api.Subnets, sub.ID), api.Opts{MinSequence: last})
	if err != nil || s.InUse != 0 {
		t.Fatalf("subnet after the deletes: %d addresses in use (%v), want 0", s.InUse, err)
	}
}

// floatingIPBecomesNAT gives the router rtr a gateway on a new external
// network, associates a floating IP of it with vm's port and waits for the
// router's dnat_and_snat rule from the floating IP to vm's address; then
// disassociates it and waits for the rule to go, and takes the floating IP
// and the gateway away again.
func floatingIPBecomesNAT(t *testing.T, c *api.Client, srv *ovntest.Servers, rtr string, vm api.Server) {
	t.Helper()
	ctx := context.Background()
	ext, _, err := api.Create[api.Network](ctx, c, api.Networks, api.NetworkBody{Name: "public", Kind: "flat", PhysicalNetwork: "physnet1", External: true}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.Create[api.Subnet](ctx, c, api.Subnets, api.SubnetBody{Network: ext.ID, CIDR: "203.0.113.0/24"}, api.Opts{}); err != nil {
		t.Fatal(err)
	}
	gwPath := api.Path(api.Routers, rtr, "gateway")
	if _, err := c.Do(ctx, api.Request{Method: http.MethodPut, Path: gwPath, Body: api.RouterGatewayBody{Network: ext.ID}}, nil); err != nil {
		t.Fatal(err)
	}
	fip, _, err := api.Create[api.FloatingIP](ctx, c, api.FloatingIPs, api.FloatingIPBody{Network: ext.ID}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	assoc := api.Path(api.FloatingIPs, fip.ID, "association")
	if _, err := c.Do(ctx, api.Request{Method: http.MethodPut, Path: assoc, Body: api.FloatingIPAssociationBody{Port: vm.NICs[0].PortID}}, nil); err != nil {
		t.Fatal(err)
	}
	fixed := vm.NICs[0].IPs[0]
	rule := func() (string, bool) {
		nat := srv.NBCtl(t, "lr-nat-list", "keel-"+rtr)
		for _, line := range strings.Split(nat, "\n") {
			f := strings.Fields(line)
			if len(f) >= 3 && f[0] == "dnat_and_snat" && f[1] == fip.IP && f[2] == fixed {
				return nat, true
			}
		}
		return nat, false
	}
	eventually(t, 30*time.Second, func() error {
		if nat, ok := rule(); !ok {
			return fmt.Errorf("no dnat_and_snat %s -> %s on router %s; its NAT:\n%s", fip.IP, fixed, rtr, nat)
		}
		return nil
	})
	if _, err := api.Delete(ctx, c, assoc, api.Opts{}, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		if nat, ok := rule(); ok {
			return fmt.Errorf("the dnat_and_snat of %s is still on router %s after the disassociation:\n%s", fip.IP, rtr, nat)
		}
		return nil
	})
	for _, path := range []string{api.Path(api.FloatingIPs, fip.ID), gwPath} {
		if _, err := api.Delete(ctx, c, path, api.Opts{}, nil); err != nil {
			t.Fatalf("DELETE %s: %v", path, err)
		}
	}
}
