package lvtest_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"

	"github.com/keel-cloud/keel/adapters/libvirt/lvtest"
)

// A guest booted from an overlay on the test image prints its seed's
// user-data on the serial console, keeps running, and powers off when
// libvirt presses its ACPI power button.
func TestGuestBootsPrintsItsUserDataStaysUpAndShutsDown(t *testing.T) {
	d := lvtest.Start(t)
	base := lvtest.GuestImage(t)
	l := d.Dial(t)

	disk := filepath.Join(d.Dir, "root.qcow2")
	run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", disk)
	marker := fmt.Sprintf("marker-%d", time.Now().UnixNano())
	seed := filepath.Join(d.Dir, "seed.iso")
	lvtest.Seed(t, seed, "instance-id: i-1\nlocal-hostname: guest1\n", "#cloud-config\n"+marker+": yes\n")
	serial := filepath.Join(d.Dir, "serial.log")

	dom, err := l.DomainDefineXMLFlags(domainXML("guest1", disk, seed, serial), 0)
	if err != nil {
		t.Fatalf("define: %v", err)
	}
	start := time.Now()
	if err := l.DomainCreate(dom); err != nil {
		t.Fatalf("create: %v", err)
	}
	ud := lvtest.WaitUserData(t, serial, 90*time.Second)
	t.Logf("user-data on the serial console %v after start", time.Since(start).Round(100*time.Millisecond))
	if !strings.Contains(ud, marker+": yes\n") {
		t.Fatalf("user-data on the console = %q, want the line %q", ud, marker+": yes")
	}

	time.Sleep(time.Second) // would it power off on its own?
	if state := domainState(t, l, dom); state != libvirt.DomainRunning {
		t.Fatalf("domain state = %d, want running (%d)", state, libvirt.DomainRunning)
	}

	// A graceful shutdown presses the ACPI power button.
	start = time.Now()
	if err := l.DomainShutdownFlags(dom, libvirt.DomainShutdownAcpiPowerBtn); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for domainState(t, l, dom) != libvirt.DomainShutoff {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("still %d 30 s after the ACPI shutdown", domainState(t, l, dom))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("shut off %v after the ACPI shutdown", time.Since(start).Round(100*time.Millisecond))
	if out, _ := os.ReadFile(serial); !strings.Contains(string(out), "KEEL-GUEST acpi-poweroff") {
		t.Errorf("the serial console does not say KEEL-GUEST acpi-poweroff:\n%s", out)
	}
	if err := l.DomainUndefineFlags(dom, 0); err != nil {
		t.Fatalf("undefine: %v", err)
	}
}

// Two daemons on one machine are two hosts: each sees only its own domains
// and has its own host UUID.
func TestTwoDaemonsAreSeparateHosts(t *testing.T) {
	a, b := lvtest.Start(t), lvtest.Start(t)
	la, lb := a.Dial(t), b.Dial(t)
	for _, c := range []struct {
		l    *libvirt.Libvirt
		d    *lvtest.Daemon
		name string
	}{{la, a, "on-a"}, {lb, b, "on-b"}} {
		xml := domainXML(c.name, filepath.Join(c.d.Dir, "none.qcow2"), "", filepath.Join(c.d.Dir, "serial.log"))
		if _, err := c.l.DomainDefineXMLFlags(xml, 0); err != nil {
			t.Fatalf("define %s: %v", c.name, err)
		}
	}
	if got := domainNames(t, la); !slices.Equal(got, []string{"on-a"}) {
		t.Errorf("daemon a lists %v, want [on-a]", got)
	}
	if got := domainNames(t, lb); !slices.Equal(got, []string{"on-b"}) {
		t.Errorf("daemon b lists %v, want [on-b]", got)
	}
	if a.HostUUID == b.HostUUID || !strings.Contains(capabilities(t, la), a.HostUUID) {
		t.Errorf("host UUIDs: a %s, b %s; a's capabilities must carry a's", a.HostUUID, b.HostUUID)
	}
}

// The storage driver works in the private daemon: a directory pool makes
// qcow2 overlays backed by the guest image, as the driver will.
func TestDirPoolMakesOverlaysOnTheGuestImage(t *testing.T) {
	d := lvtest.Start(t)
	base := lvtest.GuestImage(t)
	l := d.Dial(t)
	dir := filepath.Join(d.Dir, "pool")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	pool, err := l.StoragePoolCreateXML(fmt.Sprintf(`<pool type='dir'><name>keel</name><target><path>%s</path></target></pool>`, dir), 0)
	if err != nil {
		t.Fatalf("create pool: %v", err)
	}
	vol, err := l.StorageVolCreateXML(pool, fmt.Sprintf(`<volume><name>root.qcow2</name>
  <capacity unit='MiB'>128</capacity>
  <target><format type='qcow2'/></target>
  <backingStore><path>%s</path><format type='qcow2'/></backingStore>
</volume>`, base), 0)
	if err != nil {
		t.Fatalf("create volume: %v", err)
	}
	path, err := l.StorageVolGetPath(vol)
	if err != nil || path != filepath.Join(dir, "root.qcow2") {
		t.Fatalf("volume path = %q, %v; want %s", path, err, filepath.Join(dir, "root.qcow2"))
	}
	out, err := exec.Command("qemu-img", "info", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "backing file: "+base) {
		t.Errorf("qemu-img info %s: %v\n%s", path, err, out)
	}
}

// The test driver answers on the same socket.
func TestDialTestReachesTheTestDriver(t *testing.T) {
	d := lvtest.Start(t)
	if got := domainNames(t, d.DialTest(t)); !slices.Equal(got, []string{"test"}) {
		t.Errorf("test driver lists %v, want [test]", got)
	}
}

func TestUserDataIsReadBetweenTheMarkers(t *testing.T) {
	serial := "noise\r\nKEEL-GUEST user-data-begin\r\na: 1\r\nb: 2\r\nKEEL-GUEST user-data-end\r\nKEEL-GUEST ready\r\n"
	if ud, ok := lvtest.UserData(serial); !ok || ud != "a: 1\nb: 2\n" {
		t.Errorf("UserData = %q, %v; want %q, true", ud, ok, "a: 1\nb: 2\n")
	}
	if _, ok := lvtest.UserData("KEEL-GUEST user-data-begin\na: 1\n"); ok {
		t.Error("UserData of a half-printed user-data is ok")
	}
}

// domainXML is a small TCG domain booting disk, with seed as a CD-ROM when
// set and the serial console written to serial.
func domainXML(name, disk, seed, serial string) string {
	cdrom := ""
	if seed != "" {
		cdrom = fmt.Sprintf(`<disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/><source file='%s'/><target dev='hdc' bus='ide'/><readonly/>
    </disk>`, seed)
	}
	return fmt.Sprintf(`<domain type='qemu'>
  <name>%s</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <features><acpi/></features>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/><source file='%s'/><target dev='vda' bus='virtio'/><boot order='1'/>
    </disk>
    %s
    <serial type='file'><source path='%s'/><target port='0'/></serial>
    <graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'/>
  </devices>
</domain>`, name, disk, cdrom, serial)
}

func domainState(t *testing.T, l *libvirt.Libvirt, dom libvirt.Domain) libvirt.DomainState {
	t.Helper()
	state, _, err := l.DomainGetState(dom, 0)
	if err != nil {
		t.Fatalf("domain state: %v", err)
	}
	return libvirt.DomainState(state)
}

func domainNames(t *testing.T, l *libvirt.Libvirt) []string {
	t.Helper()
	doms, _, err := l.ConnectListAllDomains(1, 0)
	if err != nil {
		t.Fatalf("list domains: %v", err)
	}
	var names []string
	for _, d := range doms {
		names = append(names, d.Name)
	}
	slices.Sort(names)
	return names
}

func capabilities(t *testing.T, l *libvirt.Libvirt) string {
	t.Helper()
	c, err := l.ConnectGetCapabilities()
	if err != nil {
		t.Fatalf("capabilities: %v", err)
	}
	return c
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
}
