package ovn_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keel-cloud/keel/adapters/agent"
	"github.com/keel-cloud/keel/adapters/libvirt"
	"github.com/keel-cloud/keel/adapters/libvirt/lvtest"
	"github.com/keel-cloud/keel/adapters/ovn"
	"github.com/keel-cloud/keel/adapters/ovn/ovntest"
	"github.com/keel-cloud/keel/domain/port"
	"github.com/keel-cloud/keel/domain/router"
	"github.com/keel-cloud/keel/domain/secgroup"
	"github.com/keel-cloud/keel/domain/subnet"
)

// The whole data path with a real guest: the OVN adapter writes a network,
// subnet, router interface, security group and port; the libvirt driver
// boots the test guest with a NIC on br-int bound to that port; the guest
// gets its address from OVN's native DHCP and pings its router. A security
// group without ICMP stops the ping, and giving the rule back lets it
// through again. Destroying the server unplugs its tap.
func TestGuestGetsDHCPAndPingsItsRouterThroughOVN(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a private libvirtd and ovs-vswitchd need root")
	}
	srv := ovntest.Start(t, ovntest.WithNorthd())
	dp := srv.StartDataPlane(t)
	lv := lvtest.Start(t, lvtest.WithOpenVSwitch(dp.RunDir))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c, err := ovn.Dial(ctx, srv.NB, ovn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// The network: 10.0.0.0/24 with DHCP, a router interface at the
	// gateway, a security group allowing all egress.
	out := secgroup.Rule{ID: "r-out", Direction: secgroup.Egress, Protocol: secgroup.AnyProtocol}
	sshOnly := secgroup.Rule{ID: "r-ssh-out", Direction: secgroup.Egress, Protocol: secgroup.TCP, PortMin: 22, PortMax: 22}
	g := secgroup.State{ID: sgWeb, Exists: true, Project: "p1", Rules: []secgroup.Rule{out}}
	must(t, c.EnsureNetwork(ctx, net(netA, "p1"), []subnet.State{sub(subA, netA, "p1", "10.0.0.0/24", "10.0.0.1")}))
	must(t, c.EnsureSecurityGroup(ctx, g))
	ifPort := port.State{ID: rifA, Exists: true, Network: netA, Project: "p1", MAC: "fa:16:3e:00:00:0c",
		FixedIPs: []port.FixedIP{{Subnet: subA, IP: "10.0.0.1"}}, DeviceOwner: port.OwnerRouterInterface, DeviceID: rtr}
	r := router.State{ID: rtr, Exists: true, Project: "p1",
		Interfaces: []router.Interface{{Subnet: subA, CIDR: "10.0.0.0/24", Port: rifA, IP: "10.0.0.1"}}}
	must(t, c.EnsureRouter(ctx, r, []port.State{ifPort}, ovn.RouterOptions{}))
	vm := vmPort(portA, netA, subA, "fa:16:3e:00:00:0a", "10.0.0.5", sgWeb)
	must(t, c.EnsurePort(ctx, vm))

	// The server: the test guest on the real libvirt driver, its NIC the port.
	guest, err := os.ReadFile(lvtest.GuestImage(t))
	if err != nil {
		t.Fatal(err)
	}
	accel := libvirt.DetectAccel(ctx, "qemu-system-x86_64")
	d, err := libvirt.New(libvirt.Config{Conn: lv.Dial(t), Dir: lv.Dir, DomainType: accel.DomainType, CPUMode: accel.CPUMode,
		Fetch: func(context.Context, string) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(guest)), nil }})
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.NewString()
	spec := agent.ServerSpec{ID: id, Name: "vm1", VCPUs: 1, RAMMiB: 256, DiskGiB: 1,
		Image: agent.ImageRef{ID: "guest", Object: "guest", SHA256: sha256Hex(guest), Size: int64(len(guest)), Format: "qcow2"},
		NICs:  []agent.NIC{{PortID: portA, MAC: vm.MAC}}}
	if err := d.Spawn(ctx, spec); err != nil {
		t.Fatal(err)
	}
	dp.WaitBound(t, portA, 60*time.Second)
	if ifaces := dp.VSCtl(t, "--bare", "--columns=name", "find", "Interface", "external_ids:iface-id="+portA); strings.TrimSpace(ifaces) == "" {
		t.Fatalf("no Open vSwitch interface carries iface-id %s", portA)
	}
	console := lv.Dir + "/servers/" + id + "/console.log"
	waitConsole(t, console, "KEEL-GUEST ip: eth0 10.0.0.5/24", 3*time.Minute)
	waitConsole(t, console, "KEEL-GUEST ping 10.0.0.1: ok", time.Minute)

	// Egress narrowed to ssh: ICMP to the router is dropped.
	g.Rules = []secgroup.Rule{sshOnly}
	must(t, c.EnsureSecurityGroup(ctx, g))
	waitConsole(t, console, "KEEL-GUEST ping 10.0.0.1: lost", time.Minute)
	// And given back.
	g.Rules = []secgroup.Rule{sshOnly, out}
	must(t, c.EnsureSecurityGroup(ctx, g))
	waitConsoleCount(t, console, "KEEL-GUEST ping 10.0.0.1: ok", 2, time.Minute)

	if err := d.Destroy(ctx, id); err != nil {
		t.Fatal(err)
	}
	if ifaces := dp.VSCtl(t, "--bare", "--columns=name", "find", "Interface", "external_ids:iface-id="+portA); strings.TrimSpace(ifaces) != "" {
		t.Errorf("the tap %q is still on br-int after the server was destroyed", strings.TrimSpace(ifaces))
	}
}

// waitConsole waits until the serial log holds line.
func waitConsole(t *testing.T, path, line string, limit time.Duration) {
	t.Helper()
	waitConsoleCount(t, path, line, 1, limit)
}

// waitConsoleCount waits until the serial log holds line n times.
func waitConsoleCount(t *testing.T, path, line string, n int, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		b, _ := os.ReadFile(path)
		if strings.Count(strings.ReplaceAll(string(b), "\r", ""), line+"\n") >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q not %d times on the guest's console after %v; it holds:\n%s", line, n, limit, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
