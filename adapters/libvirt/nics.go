package libvirt

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/digitalocean/go-libvirt"

	"github.com/keel-cloud/keel/adapters/agent"
)

// AttachNIC implements agent.Driver: the interface is added to the
// domain's definition and, when the domain runs, plugged live (libvirt
// plugs its tap into the bridge with the port's iface-id). What is there
// already is not added again, so a retry after a partial attach finishes
// it.
func (d *Driver) AttachNIC(ctx context.Context, id string, n agent.NIC) error {
	return d.onDomain(id, func(dom libvirt.Domain) error { return d.changeNIC(ctx, dom, n, true) })
}

// DetachNIC implements agent.Driver: the interface is removed from the
// domain's definition and, when the domain runs, unplugged live; the live
// unplug needs the guest to let go of the device, which is waited for
// within ctx.
func (d *Driver) DetachNIC(ctx context.Context, id string, n agent.NIC) error {
	return d.onDomain(id, func(dom libvirt.Domain) error { return d.changeNIC(ctx, dom, n, false) })
}

// NICs implements agent.NICLister: the interfaces of the domain's
// definition.
func (d *Driver) NICs(ctx context.Context, id string) ([]agent.NIC, error) {
	var out []agent.NIC
	err := d.onDomain(id, func(dom libvirt.Domain) error {
		nics, err := d.domainNICs(dom, libvirt.DomainXMLInactive)
		for _, n := range nics {
			out = append(out, agent.NIC{PortID: n.PortID, MAC: n.MAC})
		}
		return err
	})
	return out, err
}

// changeNIC attaches (or detaches) n where it is missing (or present): in
// the definition (config) and, on a running domain, live.
func (d *Driver) changeNIC(ctx context.Context, dom libvirt.Domain, n agent.NIC, attach bool) error {
	x, err := InterfaceXML(NIC{PortID: n.PortID, MAC: n.MAC}, d.cfg.Bridge)
	if err != nil {
		return agent.Failf(err, "the interface's port or MAC is not valid")
	}
	flags, err := d.nicFlags(dom, n.MAC, attach)
	if err != nil || flags == 0 {
		return err
	}
	verb, call := "attach", d.lv().DomainAttachDeviceFlags
	if !attach {
		verb, call = "detach", d.lv().DomainDetachDeviceFlags
	}
	if err := call(dom, x, uint32(flags)); err != nil {
		if isUnsupported(err) {
			return d.redefineNIC(dom, x, n.MAC, attach, flags)
		}
		return agent.Failf(fmt.Errorf("domain %s: %s interface %s: %w", dom.Name, verb, n.MAC, err), "the hypervisor could not %s the interface", verb)
	}
	if attach || flags&libvirt.DomainDeviceModifyLive == 0 {
		return nil
	}
	return d.awaitUnplugged(ctx, dom, n.MAC)
}

// nicFlags says where a change of the NIC with mac is still to be made:
// the definition, and the running domain (none: done already).
func (d *Driver) nicFlags(dom libvirt.Domain, mac string, attach bool) (libvirt.DomainDeviceModifyFlags, error) {
	var flags libvirt.DomainDeviceModifyFlags
	has, err := d.hasNIC(dom, libvirt.DomainXMLInactive, mac)
	if err != nil {
		return 0, err
	}
	if has != attach {
		flags |= libvirt.DomainDeviceModifyConfig
	}
	p, err := d.power(dom)
	if err != nil || p != agent.Running {
		return flags, err
	}
	if has, err = d.hasNIC(dom, 0, mac); err != nil {
		return 0, err
	}
	if has != attach {
		flags |= libvirt.DomainDeviceModifyLive
	}
	return flags, nil
}

// awaitUnplugged waits until the running domain has no NIC with mac: a
// guest acknowledges an unplug in its own time.
func (d *Driver) awaitUnplugged(ctx context.Context, dom libvirt.Domain, mac string) error {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		has, err := d.hasNIC(dom, 0, mac)
		if err != nil || !has {
			return err
		}
		select {
		case <-ctx.Done():
			return agent.Failf(ctx.Err(), "the guest did not release the interface")
		case <-tick.C:
		}
	}
}

// hasNIC tells whether the domain's XML (live, or with DomainXMLInactive
// its definition) has an interface with mac.
func (d *Driver) hasNIC(dom libvirt.Domain, flags libvirt.DomainXMLFlags, mac string) (bool, error) {
	nics, err := d.domainNICs(dom, flags)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(nics, func(n NIC) bool { return n.MAC == strings.ToLower(mac) }), nil
}

func (d *Driver) domainNICs(dom libvirt.Domain, flags libvirt.DomainXMLFlags) ([]NIC, error) {
	x, err := d.lv().DomainGetXMLDesc(dom, flags)
	if err != nil {
		return nil, fmt.Errorf("domain %s: read its XML: %w", dom.Name, err)
	}
	return NICsOf(x)
}

// redefineNIC changes the NIC in the domain's definition by defining it
// again, for a hypervisor without device hot-plug (the test driver): the
// change applies at the domain's next boot.
func (d *Driver) redefineNIC(dom libvirt.Domain, x, mac string, attach bool, flags libvirt.DomainDeviceModifyFlags) error {
	if flags&libvirt.DomainDeviceModifyLive != 0 {
		d.log.Warn("the hypervisor cannot change a running domain's interfaces; the change applies at its next boot", "domain", dom.Name, "mac", mac)
	}
	if flags&libvirt.DomainDeviceModifyConfig == 0 {
		return nil
	}
	def, err := d.lv().DomainGetXMLDesc(dom, libvirt.DomainXMLInactive)
	if err != nil {
		return fmt.Errorf("domain %s: read its definition: %w", dom.Name, err)
	}
	if attach {
		def, err = withInterface(def, x)
	} else {
		def, err = withoutInterface(def, mac)
	}
	if err != nil {
		return fmt.Errorf("domain %s: %w", dom.Name, err)
	}
	if _, err := d.lv().DomainDefineXML(def); err != nil {
		return fmt.Errorf("domain %s: define it with its interfaces changed: %w", dom.Name, err)
	}
	return nil
}
