package ovn_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keel-cloud/keel/adapters/agent"
	"github.com/keel-cloud/keel/adapters/libvirt"
	"github.com/keel-cloud/keel/adapters/libvirt/lvtest"
	"github.com/keel-cloud/keel/adapters/ovn/ovntest"
)

// A NIC attached to a running real guest is plugged live: libvirt puts its
// tap on br-int with the port's iface-id, beside the NIC it was built
// with, and keeps it in the definition; detached, the tap leaves br-int
// (once the guest let go of the device) and the definition.
func TestNICHotPlugOnARunningGuest(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a private libvirtd and ovs-vswitchd need root")
	}
	srv := ovntest.Start(t)
	dp := srv.StartDataPlane(t)
	lv := lvtest.Start(t, lvtest.WithOpenVSwitch(dp.RunDir))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
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
	eth0 := agent.NIC{PortID: portA, MAC: "fa:16:3e:00:00:0a"}
	eth1 := agent.NIC{PortID: portB, MAC: "fa:16:3e:00:00:0b"}
	spec := agent.ServerSpec{ID: id, Name: "vm1", VCPUs: 1, RAMMiB: 256, DiskGiB: 1,
		Image: agent.ImageRef{ID: "guest", Object: "guest", SHA256: sha256Hex(guest), Size: int64(len(guest)), Format: "qcow2"},
		NICs:  []agent.NIC{eth0}}
	must(t, d.Spawn(ctx, spec))
	defer func() { _ = d.Destroy(context.Background(), id) }()
	waitConsole(t, lv.Dir+"/servers/"+id+"/console.log", "KEEL-GUEST booted", 3*time.Minute)
	onBridge := func(port string) bool {
		return strings.TrimSpace(dp.VSCtl(t, "--bare", "--columns=name", "find", "Interface", "external_ids:iface-id="+port)) != ""
	}
	defined := func() []agent.NIC {
		nics, err := d.NICs(ctx, id)
		must(t, err)
		return nics
	}

	must(t, d.AttachNIC(ctx, id, eth1))
	if !onBridge(portA) || !onBridge(portB) {
		t.Fatalf("after the attach: eth0 on br-int %v, eth1 %v; want both", onBridge(portA), onBridge(portB))
	}
	if got := defined(); !slices.Equal(got, []agent.NIC{eth0, eth1}) {
		t.Fatalf("defined NICs %+v after the attach", got)
	}
	must(t, d.AttachNIC(ctx, id, eth1)) // a retry changes nothing

	dctx, dcancel := context.WithTimeout(ctx, time.Minute)
	defer dcancel()
	must(t, d.DetachNIC(dctx, id, eth1))
	if onBridge(portB) || !onBridge(portA) {
		t.Fatalf("after the detach: eth0 on br-int %v, eth1 %v; want only eth0", onBridge(portA), onBridge(portB))
	}
	if got := defined(); !slices.Equal(got, []agent.NIC{eth0}) {
		t.Fatalf("defined NICs %+v after the detach", got)
	}
}
