package libvirt_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/google/uuid"

	"github.com/keel-cloud/keel/adapters/agent"
	"github.com/keel-cloud/keel/adapters/agent/drivertest"
	"github.com/keel-cloud/keel/adapters/libvirt"
	"github.com/keel-cloud/keel/adapters/libvirt/lvtest"
)

// A server's domain: TCG, its UUID the server id, the root disk booted
// first, the seed read-only on a CD-ROM, the console to a file, VNC on the
// loopback only; libvirt accepts it as written.
func TestDomainXML(t *testing.T) {
	id := uuid.NewString()
	spec := libvirt.DomainSpec{ID: id, Name: "web 1", Type: "qemu", VCPUs: 2, RAMMiB: 512,
		Disks: []libvirt.Disk{
			{Path: "/pool/servers/" + id + "/root.qcow2", Format: "qcow2", Bootable: true},
			{Path: "/pool/servers/" + id + "/seed.iso", Format: "raw", CDROM: true},
		},
		ConsoleLog: "/pool/servers/" + id + "/console.log"}
	x, err := libvirt.DomainXML(spec)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Type   string    `xml:"type,attr"`
		Name   string    `xml:"name"`
		UUID   string    `xml:"uuid"`
		Memory string    `xml:"memory"`
		VCPU   int       `xml:"vcpu"`
		ACPI   *struct{} `xml:"features>acpi"`
		Disks  []struct {
			Device string `xml:"device,attr"`
			Source struct {
				File string `xml:"file,attr"`
			} `xml:"source"`
			Target struct{ Dev, Bus string } `xml:"target"`
			Driver struct {
				Type string `xml:"type,attr"`
			} `xml:"driver"`
			ReadOnly *struct{} `xml:"readonly"`
			Boot     *struct {
				Order int `xml:"order,attr"`
			} `xml:"boot"`
		} `xml:"devices>disk"`
		Serial struct {
			Type   string `xml:"type,attr"`
			Source struct {
				Path   string `xml:"path,attr"`
				Append string `xml:"append,attr"`
			} `xml:"source"`
		} `xml:"devices>serial"`
		Graphics struct {
			Type   string `xml:"type,attr"`
			Listen string `xml:"listen,attr"`
		} `xml:"devices>graphics"`
	}
	if err := xml.Unmarshal([]byte(x), &d); err != nil {
		t.Fatal(err)
	}
	root, seed := d.Disks[0], d.Disks[1]
	switch {
	case d.Type != "qemu", d.Name != "keel-"+id, d.UUID != id, d.Memory != "512", d.VCPU != 2, d.ACPI == nil:
		t.Fatalf("domain %+v\n%s", d, x)
	case root.Device != "disk" || root.Driver.Type != "qcow2" || root.Boot == nil || root.Boot.Order != 1 || root.ReadOnly != nil:
		t.Fatalf("root disk %+v\n%s", root, x)
	case seed.Device != "cdrom" || seed.ReadOnly == nil || seed.Boot != nil || !strings.HasSuffix(seed.Source.File, "seed.iso"):
		t.Fatalf("seed %+v\n%s", seed, x)
	case d.Serial.Type != "file" || d.Serial.Source.Path != spec.ConsoleLog || d.Serial.Source.Append != "on":
		t.Fatalf("serial %+v\n%s", d.Serial, x)
	case d.Graphics.Type != "vnc" || d.Graphics.Listen != "127.0.0.1":
		t.Fatalf("graphics %+v\n%s", d.Graphics, x)
	}
	if !strings.Contains(x, `<keel:server xmlns:keel="`+libvirt.Namespace+`">`) {
		t.Fatalf("no keel metadata:\n%s", x)
	}

	// What libvirt makes of it (the test driver parses it like any other).
	l := testDriverConn(t)
	spec.Type = "test"
	x, err = libvirt.DomainXML(spec)
	if err != nil {
		t.Fatal(err)
	}
	dom, err := l.DomainDefineXMLFlags(x, 0)
	if err != nil {
		t.Fatalf("libvirt refused the domain: %v\n%s", err, x)
	}
	back, err := l.DomainGetXMLDesc(dom, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<uuid>" + id + "</uuid>", "<title>web 1</title>", libvirt.Namespace, "listen='127.0.0.1'", "<boot order='1'/>"} {
		if !strings.Contains(back, want) {
			t.Errorf("libvirt's copy lacks %s:\n%s", want, back)
		}
	}

	for _, bad := range []libvirt.DomainSpec{
		{ID: "", Type: "qemu", VCPUs: 1, RAMMiB: 1},
		{ID: id, Type: "xen", VCPUs: 1, RAMMiB: 1},
		{ID: id, Type: "qemu", VCPUs: 0, RAMMiB: 1},
	} {
		if _, err := libvirt.DomainXML(bad); err == nil {
			t.Errorf("DomainXML(%+v) took it", bad)
		}
	}
}

// testDriverConn connects to a fresh libvirt test driver (its state is per
// connection: a new, empty host each time but for its sample domain) of
// a private libvirtd.
func testDriverConn(t *testing.T) *golibvirt.Libvirt {
	t.Helper()
	return lvtest.Start(t).DialTest(t)
}

// The libvirt driver passes the driver contract against the test driver:
// the whole path (image cache, overlay, seed, domain XML, lifecycle) but a
// real QEMU.
func TestTestDriverContract(t *testing.T) {
	base := qcow2(t, 16<<20)
	sum := sha256.Sum256(base)
	drivertest.Run(t, drivertest.Harness{
		New: func(t *testing.T) agent.Driver {
			dir := t.TempDir()
			d, err := libvirt.New(libvirt.Config{Conn: testDriverConn(t), Dir: dir, DomainType: "test", StopTimeout: time.Second,
				Fetch: func(ctx context.Context, object string) (io.ReadCloser, error) {
					return io.NopCloser(bytes.NewReader(base)), nil
				}})
			if err != nil {
				t.Fatal(err)
			}
			return d
		},
		Spec: func(t *testing.T, id string) agent.ServerSpec {
			return agent.ServerSpec{ID: id, Name: "s-" + id[:8], VCPUs: 1, RAMMiB: 128, DiskGiB: 1,
				Image: agent.ImageRef{ID: "img-1", Object: "images/img-1", SHA256: hex.EncodeToString(sum[:]), Size: int64(len(base)), Format: "qcow2"}}
		},
	})
}

// A server's files live in its own folder: the overlay on the cached base,
// the seed with its hostname and user data; Destroy removes the folder.
func TestSpawnWritesDisksAndSeedAndDestroyRemovesThem(t *testing.T) {
	base := qcow2(t, 16<<20)
	sum := sha256.Sum256(base)
	dir := t.TempDir()
	testConn := testDriverConn(t)
	d, err := libvirt.New(libvirt.Config{Conn: testConn, Dir: dir, DomainType: "test",
		Fetch: func(ctx context.Context, object string) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(base)), nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id := uuid.NewString()
	spec := agent.ServerSpec{ID: id, Name: "Web_01", VCPUs: 1, RAMMiB: 128, DiskGiB: 2, UserData: []byte("#!/bin/sh\necho hello\n"),
		SSHKeys: []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOnly alice@laptop"}, AdminPassword: []byte("Zq7mW3kPt9xR2vB8nH4c"),
		DataDisksGiB: []int{3, 5},
		NICs:         []agent.NIC{{PortID: uuid.NewString(), MAC: "fa:16:3e:00:00:0a"}, {PortID: uuid.NewString(), MAC: "fa:16:3e:00:00:0b"}},
		Image:        agent.ImageRef{ID: "img-1", Object: "o", SHA256: hex.EncodeToString(sum[:]), Size: int64(len(base)), Format: "qcow2"}}
	if err := d.Spawn(ctx, spec); err != nil {
		t.Fatal(err)
	}
	sdir := filepath.Join(dir, "servers", id)
	info, err := exec.Command("qemu-img", "info", "--output=json", "--force-share", filepath.Join(sdir, "root.qcow2")).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, info)
	}
	if !strings.Contains(string(info), `"virtual-size": 2147483648`) || !strings.Contains(string(info), filepath.Join(dir, "bases")) {
		t.Fatalf("root disk is not a 2 GiB overlay on the cached base:\n%s", info)
	}
	// The data disks: blank qcow2 of the sizes asked, attached after the
	// root disk as vdb and vdc, none booted from.
	for i, gib := range spec.DataDisksGiB {
		out, err := exec.Command("qemu-img", "info", "--output=json", "--force-share", filepath.Join(sdir, fmt.Sprintf("data-%d.qcow2", i+1))).CombinedOutput()
		if err != nil {
			t.Fatalf("data disk %d: %v: %s", i+1, err, out)
		}
		if !strings.Contains(string(out), fmt.Sprintf(`"virtual-size": %d`, int64(gib)<<30)) || strings.Contains(string(out), "backing") {
			t.Fatalf("data disk %d is not a blank %d GiB disk:\n%s", i+1, gib, out)
		}
	}
	dom, err := testConn.DomainLookupByName("keel-" + id)
	if err != nil {
		t.Fatal(err)
	}
	x, err := testConn.DomainGetXMLDesc(dom, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Each NIC: a virtio interface on br-int that Open vSwitch binds to its
	// port (external_ids:iface-id), eth0 first.
	var got struct {
		NICs []struct {
			Type string `xml:"type,attr"`
			MAC  struct {
				Address string `xml:"address,attr"`
			} `xml:"mac"`
			Bridge struct {
				Name string `xml:"bridge,attr"`
			} `xml:"source"`
			VirtualPort struct {
				Type       string `xml:"type,attr"`
				Parameters struct {
					InterfaceID string `xml:"interfaceid,attr"`
				} `xml:"parameters"`
			} `xml:"virtualport"`
			Model struct {
				Type string `xml:"type,attr"`
			} `xml:"model"`
		} `xml:"devices>interface"`
	}
	if err := xml.Unmarshal([]byte(x), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.NICs) != 2 {
		t.Fatalf("domain has %d interfaces, want 2:\n%s", len(got.NICs), x)
	}
	for i, n := range got.NICs {
		want := spec.NICs[i]
		if n.Type != "bridge" || n.MAC.Address != want.MAC || n.Bridge.Name != "br-int" || n.VirtualPort.Type != "openvswitch" ||
			n.VirtualPort.Parameters.InterfaceID != want.PortID || n.Model.Type != "virtio" {
			t.Errorf("interface %d is %+v, want a virtio NIC on br-int bound to %s with MAC %s", i, n, want.PortID, want.MAC)
		}
	}
	for _, want := range []string{"data-1.qcow2'/>\n      <target dev='vdb' bus='virtio'/>", "data-2.qcow2'/>\n      <target dev='vdc' bus='virtio'/>"} {
		if !strings.Contains(x, want) {
			t.Fatalf("domain lacks %q:\n%s", want, x)
		}
	}
	iso, err := os.ReadFile(filepath.Join(sdir, "seed.iso"))
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(sdir, "seed.iso")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("seed (it holds the password) is %v", fi.Mode().Perm())
	}
	for _, want := range []string{"CIDATA", "instance-id: " + id, "local-hostname: web-01", "echo hello",
		// vendor-data: the admin user with the keypair's key and the password
		"name: keel", `- "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOnly alice@laptop"`,
		`{name: keel, password: "Zq7mW3kPt9xR2vB8nH4c", type: text}`} {
		if !bytes.Contains(bytes.ToUpper(iso), bytes.ToUpper([]byte(want))) {
			t.Errorf("seed lacks %q", want)
		}
	}
	if err := d.Destroy(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sdir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("server folder left after destroy: %v", err)
	}
}

// qcow2 returns the bytes of a fresh qcow2 image of the given virtual size.
func qcow2(t *testing.T, size int64) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "base.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", p, strconv.FormatInt(size, 10)).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A node registers with the vCPUs and RAM libvirt reports (the test
// driver's fixed node: 16 CPUs, 3 GiB) and the size of its pool's disk.
func TestHostInfo(t *testing.T) {
	dir := t.TempDir()
	d, err := libvirt.New(libvirt.Config{Conn: testDriverConn(t), Dir: dir, DomainType: "test",
		Fetch: func(ctx context.Context, object string) (io.ReadCloser, error) { return nil, errors.New("unused") }})
	if err != nil {
		t.Fatal(err)
	}
	info, err := d.HostInfo("node-1")
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "node-1" || info.Driver != "libvirt" || info.Hypervisor != "test" || info.VCPUs != 16 || info.RAMMiB != 3072 || info.DiskGiB < 1 {
		t.Fatalf("host info %+v", info)
	}
}

// An image whose bytes do not match their sha256, or whose format lies, is
// refused with a reason the user can read, and the host keeps nothing of
// the server.
func TestRefusedImageSaysWhyAndLeavesNothing(t *testing.T) {
	good := qcow2(t, 16<<20)
	sum := sha256.Sum256(good)
	for name, tc := range map[string]struct {
		bytes  []byte
		format string
		want   string
	}{
		"bytes changed":    {append([]byte{good[0] ^ 1}, good[1:]...), "qcow2", "do not match"},
		"qcow2 called raw": {good, "raw", "qcow2"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			d, err := libvirt.New(libvirt.Config{Conn: testDriverConn(t), Dir: dir, DomainType: "test",
				Fetch: func(ctx context.Context, object string) (io.ReadCloser, error) {
					return io.NopCloser(bytes.NewReader(tc.bytes)), nil
				}})
			if err != nil {
				t.Fatal(err)
			}
			id := uuid.NewString()
			err = d.Spawn(context.Background(), agent.ServerSpec{ID: id, Name: "x", VCPUs: 1, RAMMiB: 128, DiskGiB: 1,
				Image: agent.ImageRef{ID: "img-1", Object: "o", SHA256: hex.EncodeToString(sum[:]), Size: int64(len(good)), Format: tc.format}})
			if err == nil {
				t.Fatal("spawn took the image")
			}
			reason := agent.Reason(err, "build the server")
			if !strings.Contains(reason, tc.want) || strings.Contains(reason, dir) {
				t.Fatalf("reason %q; want it to say %q and name no path", reason, tc.want)
			}
			if obs, _ := d.Observe(context.Background()); slicesContainID(obs, id) {
				t.Fatalf("a domain was left: %+v", obs)
			}
			if _, err := os.Stat(filepath.Join(dir, "servers", id)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("server folder left: %v", err)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, "bases", "*")); len(left) != 0 {
				t.Fatalf("cache kept %v", left)
			}
		})
	}
}

func slicesContainID(obs []agent.Observed, id string) bool {
	for _, o := range obs {
		if o.ID == id {
			return true
		}
	}
	return false
}

// A base stays cached while a server rests on it and goes with the last
// one: destroying the last server of an image evicts its base, not another
// image's.
func TestUnusedBasesAreEvicted(t *testing.T) {
	a, b := qcow2(t, 16<<20), qcow2(t, 32<<20)
	images := map[string][]byte{"img-a": a, "img-b": b}
	dir := t.TempDir()
	d, err := libvirt.New(libvirt.Config{Conn: testDriverConn(t), Dir: dir, DomainType: "test",
		Fetch: func(ctx context.Context, object string) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(images[object])), nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	spec := func(img string) agent.ServerSpec {
		sum := sha256.Sum256(images[img])
		id := uuid.NewString()
		return agent.ServerSpec{ID: id, Name: "s-" + id[:8], VCPUs: 1, RAMMiB: 128, DiskGiB: 1,
			Image: agent.ImageRef{ID: img, Object: img, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(images[img])), Format: "qcow2"}}
	}
	a1, a2, b1 := spec("img-a"), spec("img-a"), spec("img-b")
	for _, s := range []agent.ServerSpec{a1, a2, b1} {
		if err := d.Spawn(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	cached := func() []string {
		es, _ := os.ReadDir(filepath.Join(dir, "bases"))
		var out []string
		for _, e := range es {
			out = append(out, e.Name())
		}
		return out
	}
	if err := d.Destroy(ctx, a1.ID); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cached(), ","); got != "img-a,img-b" {
		t.Fatalf("bases after the first of two servers of img-a went: %s", got)
	}
	if err := d.Destroy(ctx, a2.ID); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cached(), ","); got != "img-b" {
		t.Fatalf("bases after the last server of img-a went: %s", got)
	}
}

// A KVM guest gets the host's CPU model when the host runs it (host-model),
// and the emulator's default model otherwise (no <cpu>); TCG never names one.
// A NIC without a port id, or with a MAC libvirt would refuse or that is
// not unicast, is refused before libvirt sees it.
func TestDomainXMLRefusesBadNICs(t *testing.T) {
	p := uuid.NewString()
	for _, n := range []libvirt.NIC{{PortID: "", MAC: "fa:16:3e:00:00:01"}, {PortID: "port-1", MAC: "fa:16:3e:00:00:01"},
		{PortID: p, MAC: "FA:16:3E:00:00:01"}, {PortID: p, MAC: "fb:16:3e:00:00:01"}, {PortID: p, MAC: "fa:16:3e:00:00"}} {
		_, err := libvirt.DomainXML(libvirt.DomainSpec{ID: uuid.NewString(), Name: "n", Type: "qemu", VCPUs: 1, RAMMiB: 64, NICs: []libvirt.NIC{n}})
		if err == nil || !strings.Contains(err.Error(), "port id (a UUID) and a unicast MAC") {
			t.Errorf("NIC %+v: err %v, want a refusal naming the MAC rule", n, err)
		}
	}
}

func TestDomainXMLCPUMode(t *testing.T) {
	for _, c := range []struct {
		typ, mode, want string
	}{{"kvm", "host-model", "host-model"}, {"kvm", "", ""}, {"qemu", "", ""}} {
		x, err := libvirt.DomainXML(libvirt.DomainSpec{ID: uuid.NewString(), Name: "c", Type: c.typ, CPUMode: c.mode, VCPUs: 1, RAMMiB: 64})
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			CPU *struct {
				Mode string `xml:"mode,attr"`
			} `xml:"cpu"`
		}
		if err := xml.Unmarshal([]byte(x), &d); err != nil {
			t.Fatal(err)
		}
		got := ""
		if d.CPU != nil {
			got = d.CPU.Mode
		}
		if got != c.want {
			t.Errorf("%s with cpu mode %q: <cpu mode=%q>, want %q", c.typ, c.mode, got, c.want)
		}
	}
}
