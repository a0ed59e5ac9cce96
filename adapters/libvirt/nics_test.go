package libvirt_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"slices"
	"strings"
	"testing"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/google/uuid"

	"github.com/keel-cloud/keel/adapters/agent"
	"github.com/keel-cloud/keel/adapters/libvirt"
)

// AttachNIC and DetachNIC change the domain's XML: the attached NIC is a
// virtio interface on br-int bound to its port, after those it was built
// with; the detached one is gone, and the others are as they were.
func TestAttachAndDetachNICChangeTheDomainXML(t *testing.T) {
	base := qcow2(t, 16<<20)
	sum := sha256.Sum256(base)
	conn := testDriverConn(t)
	d, err := libvirt.New(libvirt.Config{Conn: conn, Dir: t.TempDir(), DomainType: "test",
		Fetch: func(ctx context.Context, object string) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(base)), nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, id := context.Background(), uuid.NewString()
	eth0 := agent.NIC{PortID: uuid.NewString(), MAC: "fa:16:3e:00:00:0a"}
	eth1 := agent.NIC{PortID: uuid.NewString(), MAC: "fa:16:3e:00:00:0b"}
	spec := agent.ServerSpec{ID: id, Name: "web", VCPUs: 1, RAMMiB: 128, DiskGiB: 1, NICs: []agent.NIC{eth0},
		Image: agent.ImageRef{ID: "img-1", Object: "o", SHA256: hex.EncodeToString(sum[:]), Size: int64(len(base)), Format: "qcow2"}}
	if err := d.Spawn(ctx, spec); err != nil {
		t.Fatal(err)
	}
	nics := func() []libvirt.NIC {
		t.Helper()
		dom, err := conn.DomainLookupByName("keel-" + id)
		if err != nil {
			t.Fatal(err)
		}
		x, err := conn.DomainGetXMLDesc(dom, golibvirt.DomainXMLInactive)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"<source bridge='br-int'/>", "<virtualport type='openvswitch'>", "<model type='virtio'/>"} {
			if !strings.Contains(x, want) {
				t.Fatalf("domain lacks %q:\n%s", want, x)
			}
		}
		n, err := libvirt.NICsOf(x)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if err := d.AttachNIC(ctx, id, eth1); err != nil {
		t.Fatal(err)
	}
	want := []libvirt.NIC{{PortID: eth0.PortID, MAC: eth0.MAC}, {PortID: eth1.PortID, MAC: eth1.MAC}}
	if got := nics(); !slices.Equal(got, want) {
		t.Fatalf("after attach: %+v; want %+v", got, want)
	}
	if err := d.DetachNIC(ctx, id, eth0); err != nil {
		t.Fatal(err)
	}
	if got := nics(); !slices.Equal(got, want[1:]) {
		t.Fatalf("after detach: %+v; want %+v", got, want[1:])
	}
	if err := d.AttachNIC(ctx, id, agent.NIC{PortID: "not-a-uuid", MAC: eth0.MAC}); err == nil || agent.Reason(err, "attach the interface") != "the interface's port or MAC is not valid" {
		t.Fatalf("a NIC with a bad port id: %v", err)
	}
}

// The device XML of an attached NIC is the interface DomainXML writes.
func TestInterfaceXML(t *testing.T) {
	n := libvirt.NIC{PortID: uuid.NewString(), MAC: "fa:16:3e:00:00:0a"}
	x, err := libvirt.InterfaceXML(n, "")
	if err != nil {
		t.Fatal(err)
	}
	dom, err := libvirt.DomainXML(libvirt.DomainSpec{ID: uuid.NewString(), Type: "test", VCPUs: 1, RAMMiB: 1, NICs: []libvirt.NIC{n}})
	if err != nil {
		t.Fatal(err)
	}
	// The domain's devices are indented two levels deeper.
	if !strings.Contains(dom, strings.ReplaceAll(x, "\n", "\n    ")) {
		t.Fatalf("device XML\n%s\nis not the domain's interface:\n%s", x, dom)
	}
	if _, err := libvirt.InterfaceXML(libvirt.NIC{PortID: n.PortID, MAC: "01:00:5e:00:00:01"}, ""); err == nil {
		t.Fatal("a multicast MAC was taken")
	}
}
