package libvirt

import (
	"encoding/xml"
	"fmt"
	"sort"
	"syscall"

	"github.com/keel-cloud/keel/adapters/agent"
)

// HostInfo is what the node registers with: its vCPUs and RAM as libvirt
// reports them, the disk of the pool's file system, and the CPU model and
// features of libvirt's host capabilities.
func (d *Driver) HostInfo(name string) (agent.HostInfo, error) {
	_, memKiB, cpus, _, _, _, _, _, err := d.lv().NodeGetInfo()
	if err != nil {
		return agent.HostInfo{}, fmt.Errorf("host %s: node info: %w", name, err)
	}
	caps, err := d.lv().ConnectGetCapabilities()
	if err != nil {
		return agent.HostInfo{}, fmt.Errorf("host %s: capabilities: %w", name, err)
	}
	model, features, err := hostCPU(caps)
	if err != nil {
		return agent.HostInfo{}, fmt.Errorf("host %s: %w", name, err)
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(d.cfg.Dir, &fs); err != nil {
		return agent.HostInfo{}, fmt.Errorf("host %s: size of %s: %w", name, d.cfg.Dir, err)
	}
	hv := map[string]string{"kvm": "kvm", "qemu": "qemu-tcg", "test": "test"}[d.cfg.DomainType]
	return agent.HostInfo{Name: name, Driver: "libvirt", Hypervisor: hv, CPUModel: model, CPUFeatures: features,
		VCPUs: int(cpus), RAMMiB: int(memKiB / 1024), DiskGiB: int(fs.Blocks * uint64(fs.Bsize) >> 30)}, nil
}

// hostCPU reads the host CPU's model and features from libvirt's
// capabilities XML.
func hostCPU(caps string) (string, []string, error) {
	var c struct {
		CPU struct {
			Model    string `xml:"model"`
			Features []struct {
				Name string `xml:"name,attr"`
			} `xml:"feature"`
		} `xml:"host>cpu"`
	}
	if err := xml.Unmarshal([]byte(caps), &c); err != nil {
		return "", nil, fmt.Errorf("read capabilities: %w", err)
	}
	fs := make([]string, 0, len(c.CPU.Features))
	for _, f := range c.CPU.Features {
		fs = append(fs, f.Name)
	}
	sort.Strings(fs)
	return c.CPU.Model, fs, nil
}
