package libvirt

import (
	"encoding/xml"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/google/uuid"
)

// domainPrefix starts the libvirt name of every domain Keel creates; the
// rest is the server id, which is also the domain's UUID.
const domainPrefix = "keel-"

// Namespace marks Keel's metadata in a domain's XML.
const Namespace = "https://keel.cloud/xmlns/libvirt/server/1"

// DomainSpec is what a domain is made of.
type DomainSpec struct {
	ID   string // server id: the domain's UUID, and its name after domainPrefix
	Name string // the server's name (the domain's title)
	Type string // libvirt domain type: kvm, qemu (TCG) or test
	// CPUMode is a KVM guest's libvirt CPU mode (host-model), or "" for
	// the emulator's default model (see Accel).
	CPUMode string
	VCPUs   int
	RAMMiB  int
	// Disks in boot order: the first is the one booted from.
	Disks []Disk
	// ConsoleLog is the file the serial console writes to.
	ConsoleLog string
	// NICs are virtio network interfaces on Bridge, in order.
	NICs []NIC
	// Bridge is the Open vSwitch integration bridge the NICs are plugged
	// into (br-int when empty).
	Bridge string
}

// NIC is one network interface of a domain: libvirt plugs its tap into the
// Open vSwitch bridge with external_ids:iface-id set to PortID, which is
// how ovn-controller binds it to the logical switch port of that name.
type NIC struct {
	PortID string
	MAC    string
}

// DefaultBridge is the integration bridge of OVN.
const DefaultBridge = "br-int"

// Disk is one disk of a domain.
type Disk struct {
	Path     string
	Format   string // qcow2 or raw
	CDROM    bool   // read-only, on a SATA CD-ROM (seeds and ISO images)
	Bootable bool   // gets a boot order
}

// domainXML is the subset of libvirt's domain schema Keel writes.
type domainXML struct {
	XMLName  xml.Name `xml:"domain"`
	Type     string   `xml:"type,attr"`
	Name     string   `xml:"name"`
	UUID     string   `xml:"uuid"`
	Title    string   `xml:"title"`
	Metadata struct {
		Server struct {
			XMLName xml.Name `xml:"keel:server"`
			NS      string   `xml:"xmlns:keel,attr"`
			ID      string   `xml:"keel:id"`
			Name    string   `xml:"keel:name"`
		}
	} `xml:"metadata"`
	Memory struct {
		Unit  string `xml:"unit,attr"`
		Value int    `xml:",chardata"`
	} `xml:"memory"`
	VCPU int `xml:"vcpu"`
	OS   struct {
		Type struct {
			Arch  string `xml:"arch,attr"`
			Value string `xml:",chardata"`
		} `xml:"type"`
	} `xml:"os"`
	Features struct {
		ACPI *struct{} `xml:"acpi"`
	} `xml:"features"`
	CPU *struct {
		Mode string `xml:"mode,attr"`
	} `xml:"cpu"`
	OnPoweroff string     `xml:"on_poweroff"`
	OnReboot   string     `xml:"on_reboot"`
	OnCrash    string     `xml:"on_crash"`
	Devices    devicesXML `xml:"devices"`
}

type devicesXML struct {
	Disks      []diskXML      `xml:"disk"`
	Interfaces []interfaceXML `xml:"interface"`
	Serial     struct {
		Type   string `xml:"type,attr"`
		Source struct {
			Path   string `xml:"path,attr"`
			Append string `xml:"append,attr"`
		} `xml:"source"`
		Target struct {
			Port int `xml:"port,attr"`
		} `xml:"target"`
	} `xml:"serial"`
	Graphics struct {
		Type     string `xml:"type,attr"`
		Port     int    `xml:"port,attr"`
		Autoport string `xml:"autoport,attr"`
		Listen   string `xml:"listen,attr"`
	} `xml:"graphics"`
}

type diskXML struct {
	Type   string `xml:"type,attr"`
	Device string `xml:"device,attr"`
	Driver struct {
		Name string `xml:"name,attr"`
		Type string `xml:"type,attr"`
	} `xml:"driver"`
	Source struct {
		File string `xml:"file,attr"`
	} `xml:"source"`
	Target struct {
		Dev string `xml:"dev,attr"`
		Bus string `xml:"bus,attr"`
	} `xml:"target"`
	ReadOnly *struct{} `xml:"readonly"`
	Boot     *struct {
		Order int `xml:"order,attr"`
	} `xml:"boot"`
}

// interfaceXML is a virtio NIC on an Open vSwitch bridge.
type interfaceXML struct {
	XMLName xml.Name `xml:"interface"`
	Type    string   `xml:"type,attr"`
	MAC     struct {
		Address string `xml:"address,attr"`
	} `xml:"mac"`
	Source struct {
		Bridge string `xml:"bridge,attr"`
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
}

// macPattern is a unicast MAC address as libvirt takes it.
var macPattern = regexp.MustCompile(`^[0-9a-f][02468ace](:[0-9a-f]{2}){5}$`)

// DomainXML renders s as libvirt domain XML: virtio disks (CD-ROMs on
// SATA), the serial console to a file, VNC on the host's loopback only,
// ACPI so that a graceful stop works, and each NIC a virtio interface on the
// Open vSwitch integration bridge bound to its port.
func DomainXML(s DomainSpec) (string, error) {
	switch {
	case s.ID == "":
		return "", fmt.Errorf("domain: no server id")
	case s.VCPUs < 1 || s.RAMMiB < 1:
		return "", fmt.Errorf("domain %s: %d vCPUs and %d MiB of RAM", s.ID, s.VCPUs, s.RAMMiB)
	case s.Type != "kvm" && s.Type != "qemu" && s.Type != "test":
		return "", fmt.Errorf("domain %s: unknown domain type %q", s.ID, s.Type)
	}
	var d domainXML
	d.Type, d.Name, d.UUID, d.Title = s.Type, domainPrefix+s.ID, s.ID, s.Name
	d.Metadata.Server.NS, d.Metadata.Server.ID, d.Metadata.Server.Name = Namespace, s.ID, s.Name
	d.Memory.Unit, d.Memory.Value = "MiB", s.RAMMiB
	d.VCPU = s.VCPUs
	d.OS.Type.Arch, d.OS.Type.Value = "x86_64", "hvm"
	d.Features.ACPI = &struct{}{}
	if s.Type == "kvm" && s.CPUMode != "" {
		// host-model: the guest sees the host's CPU model, what the host
		// registered.
		d.CPU = &struct {
			Mode string `xml:"mode,attr"`
		}{Mode: s.CPUMode}
	}
	d.OnPoweroff, d.OnReboot, d.OnCrash = "destroy", "restart", "destroy"
	order, vd, sd := 0, 0, 0
	for _, k := range s.Disks {
		var x diskXML
		x.Type, x.Driver.Name, x.Driver.Type, x.Source.File = "file", "qemu", k.Format, k.Path
		if k.CDROM {
			x.Device, x.Target.Bus, x.Target.Dev = "cdrom", "sata", "sd"+string(rune('a'+sd))
			x.ReadOnly = &struct{}{}
			sd++
		} else {
			x.Device, x.Target.Bus, x.Target.Dev = "disk", "virtio", "vd"+string(rune('a'+vd))
			vd++
		}
		if k.Bootable {
			order++
			x.Boot = &struct {
				Order int `xml:"order,attr"`
			}{Order: order}
		}
		if vd > 26 || sd > 26 {
			return "", fmt.Errorf("domain %s: too many disks (%d)", s.ID, len(s.Disks))
		}
		d.Devices.Disks = append(d.Devices.Disks, x)
	}
	bridge := s.Bridge
	if bridge == "" {
		bridge = DefaultBridge
	}
	for _, n := range s.NICs {
		x, err := interfaceOf(n, bridge)
		if err != nil {
			return "", fmt.Errorf("domain %s: %w", s.ID, err)
		}
		d.Devices.Interfaces = append(d.Devices.Interfaces, x)
	}
	// Appended to across boots: the log keeps what earlier boots printed.
	d.Devices.Serial.Type, d.Devices.Serial.Source.Path, d.Devices.Serial.Source.Append = "file", s.ConsoleLog, "on"
	d.Devices.Graphics.Type, d.Devices.Graphics.Port, d.Devices.Graphics.Autoport, d.Devices.Graphics.Listen = "vnc", -1, "yes", "127.0.0.1"
	out, err := xml.MarshalIndent(d, "", "  ")
	if err != nil {
		return "", fmt.Errorf("domain %s: %w", s.ID, err)
	}
	return string(out), nil
}

// interfaceOf is NIC n as a virtio interface on bridge bound to its port.
func interfaceOf(n NIC, bridge string) (interfaceXML, error) {
	var x interfaceXML
	if _, err := uuid.Parse(n.PortID); err != nil || !macPattern.MatchString(n.MAC) {
		return x, fmt.Errorf("NIC of port %q with MAC %q: a port id (a UUID) and a unicast MAC (lower-case xx:xx:xx:xx:xx:xx) are needed", n.PortID, n.MAC)
	}
	if bridge == "" {
		bridge = DefaultBridge
	}
	x.Type, x.MAC.Address, x.Source.Bridge, x.Model.Type = "bridge", n.MAC, bridge, "virtio"
	x.VirtualPort.Type, x.VirtualPort.Parameters.InterfaceID = "openvswitch", n.PortID
	return x, nil
}

// InterfaceXML renders NIC n as the libvirt device XML of an interface on
// bridge (br-int when empty), as DomainXML does, for a device attached
// or detached later.
func InterfaceXML(n NIC, bridge string) (string, error) {
	x, err := interfaceOf(n, bridge)
	if err != nil {
		return "", err
	}
	out, err := xml.MarshalIndent(x, "", "  ")
	if err != nil {
		return "", fmt.Errorf("NIC of port %s: %w", n.PortID, err)
	}
	return string(out), nil
}

// NICsOf reads the NICs of a domain's XML, in order: each interface's MAC
// and the port its virtualport is bound to ("" for an interface Keel did
// not make).
func NICsOf(domain string) ([]NIC, error) {
	var d struct {
		Interfaces []interfaceXML `xml:"devices>interface"`
	}
	if err := xml.Unmarshal([]byte(domain), &d); err != nil {
		return nil, fmt.Errorf("read the domain's interfaces: %w", err)
	}
	out := make([]NIC, 0, len(d.Interfaces))
	for _, x := range d.Interfaces {
		out = append(out, NIC{PortID: x.VirtualPort.Parameters.InterfaceID, MAC: strings.ToLower(x.MAC.Address)})
	}
	return out, nil
}

// withInterface adds the interface device x at the end of the devices of
// domain XML def.
func withInterface(def, x string) (string, error) {
	i := strings.LastIndex(def, "</devices>")
	if i < 0 {
		return "", fmt.Errorf("its XML has no devices")
	}
	return def[:i] + x + "\n" + def[i:], nil
}

// withoutInterface removes the interfaces with mac from domain XML def.
func withoutInterface(def, mac string) (string, error) {
	dec := xml.NewDecoder(strings.NewReader(def))
	var cuts [][2]int64
	for {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("read its XML: %w", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Local != "interface" {
			continue
		}
		var x interfaceXML
		if err := dec.DecodeElement(&x, &se); err != nil {
			return "", fmt.Errorf("read its XML: %w", err)
		}
		if strings.EqualFold(x.MAC.Address, mac) {
			cuts = append(cuts, [2]int64{start, dec.InputOffset()})
		}
	}
	for i := len(cuts) - 1; i >= 0; i-- {
		def = def[:cuts[i][0]] + def[cuts[i][1]:]
	}
	return def, nil
}

// serverOf is the server id of a domain Keel created, from its name; ok is
// false for a domain Keel did not create.
func serverOf(domainName string) (string, bool) {
	id, ok := strings.CutPrefix(domainName, domainPrefix)
	return id, ok && id != ""
}
