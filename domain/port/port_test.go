package port_test

import (
	"testing"
	"time"

	"github.com/keel-cloud/keel/domain"
	dt "github.com/keel-cloud/keel/domain/decidertest"
	"github.com/keel-cloud/keel/domain/port"
)

var (
	t0  = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	off = false
	ips = []port.FixedIP{{Subnet: "s-1", IP: "10.0.0.2"}}

	created = []domain.Event{&port.Created{ID: "pt-1", Network: "n-1", Project: "p-1", MAC: "fa:16:3e:12:34:56", FixedIPs: ips,
		SecurityGroups: []string{"sg-1"}, PortSecurity: true, CreatedAt: t0}}
	attached = dt.Plus(created, &port.DeviceAttached{DeviceOwner: port.OwnerServer, DeviceID: "srv-1", At: t0})
	bound    = dt.Plus(attached, &port.Bound{Host: "node-1", At: t0})
	router   = []domain.Event{&port.Created{ID: "pt-1", Network: "n-1", Project: "p-1", MAC: "fa:16:3e:12:34:56", FixedIPs: ips,
		PortSecurity: true, DeviceOwner: port.OwnerRouterInterface, DeviceID: "r-1", CreatedAt: t0}}
	deleted = dt.Plus(created, &port.Deleted{FixedIPs: ips, At: t0})
)

func create(f func(c *port.Create)) port.Command {
	c := port.Create{ID: "pt-1", Network: "n-1", Project: "p-1", MAC: "FA-16-3E-12-34-56", GeneratedMAC: true, FixedIPs: ips, SecurityGroups: []string{"sg-1"}, At: t0}
	f(&c)
	return c
}

func TestCreate(t *testing.T) {
	dt.Run(t, port.Decider, "pt-1", []dt.Case[port.Command]{
		{Name: "MAC made canonical, port security on by default", When: create(func(*port.Create) {}), Then: dt.Then(created...)},
		{Name: "a user's MAC need not be locally administered", When: create(func(c *port.Create) {
			c.MAC, c.GeneratedMAC, c.FixedIPs, c.SecurityGroups, c.PortSecurity, c.Name = "00:1b:21:0a:0b:0c", false, nil, nil, &off, "nic"
		}), Then: dt.Then(&port.Created{ID: "pt-1", Network: "n-1", Project: "p-1", Name: "nic", MAC: "00:1b:21:0a:0b:0c", CreatedAt: t0})},
		{Name: "router interface", When: create(func(c *port.Create) {
			c.SecurityGroups, c.DeviceOwner, c.DeviceID = nil, port.OwnerRouterInterface, "r-1"
		}), Then: dt.Then(router...)},
		{Name: "twice", Given: created, When: create(func(*port.Create) {}), Then: dt.Refused(domain.Conflict, "port pt-1 already exists")},
		{Name: "no network", When: create(func(c *port.Create) { c.Network = "" }), Then: dt.Refused(domain.Invalid, "belongs to a network and a project")},
		{Name: "bad MAC", When: create(func(c *port.Create) { c.MAC = "fa:16:3e" }), Then: dt.Refused(domain.Invalid, `MAC address "fa:16:3e" is not a 6-byte Ethernet address`)},
		{Name: "8-byte MAC", When: create(func(c *port.Create) { c.MAC = "02:00:5e:10:00:00:00:01" }), Then: dt.Refused(domain.Invalid, "not a 6-byte")},
		{Name: "multicast MAC", When: create(func(c *port.Create) { c.MAC = "01:00:5e:00:00:01" }), Then: dt.Refused(domain.Invalid, "01:00:5e:00:00:01 is a multicast address")},
		{Name: "zero MAC", When: create(func(c *port.Create) { c.MAC, c.GeneratedMAC = "00:00:00:00:00:00", false }), Then: dt.Refused(domain.Invalid, "all zeros")},
		{Name: "generated MAC not locally administered", When: create(func(c *port.Create) { c.MAC = "00:1b:21:0a:0b:0c" }),
			Then: dt.Refused(domain.Invalid, "generated MAC address 00:1b:21:0a:0b:0c is not locally administered")},
		{Name: "fixed IP without a subnet", When: create(func(c *port.Create) { c.FixedIPs = []port.FixedIP{{IP: "10.0.0.2"}} }), Then: dt.Refused(domain.Invalid, `fixed IP "10.0.0.2" names no subnet`)},
		{Name: "fixed IP not an address", When: create(func(c *port.Create) { c.FixedIPs = []port.FixedIP{{Subnet: "s-1", IP: "10.0.0.x"}} }), Then: dt.Refused(domain.Invalid, `fixed IP "10.0.0.x" is not an IPv4 address`)},
		{Name: "fixed IP twice", When: create(func(c *port.Create) { c.FixedIPs = []port.FixedIP{ips[0], ips[0]} }), Then: dt.Refused(domain.Invalid, "fixed IP 10.0.0.2 on subnet s-1 is listed twice")},
		{Name: "17 fixed IPs", When: create(func(c *port.Create) { c.FixedIPs = make([]port.FixedIP, 17) }), Then: dt.Refused(domain.Invalid, "at most 16 fixed IPs, got 17")},
		{Name: "security groups without port security", When: create(func(c *port.Create) { c.PortSecurity = &off }), Then: dt.Refused(domain.Invalid, "port security is off, so security groups would not apply")},
		{Name: "security group twice", When: create(func(c *port.Create) { c.SecurityGroups = []string{"sg-1", "sg-1"} }), Then: dt.Refused(domain.Invalid, "security group sg-1 is listed twice")},
		{Name: "device id without an owner", When: create(func(c *port.Create) { c.DeviceID = "srv-1" }), Then: dt.Refused(domain.Invalid, "a device id needs a device owner")},
		{Name: "device owner with control characters", When: create(func(c *port.Create) { c.DeviceOwner = "compute\n" }), Then: dt.Refused(domain.Invalid, "device owner must not contain control characters")},
	})
}

func TestLifecycle(t *testing.T) {
	attach := port.AttachDevice{DeviceOwner: port.OwnerServer, DeviceID: "srv-1", At: t0}
	dt.Run(t, port.Decider, "pt-1", []dt.Case[port.Command]{
		{Name: "attach to a server", Given: created, When: attach, Then: dt.Then(&port.DeviceAttached{DeviceOwner: port.OwnerServer, DeviceID: "srv-1", At: t0})},
		{Name: "attach again", Given: attached, When: attach, Then: dt.Then()},
		{Name: "attach to another server", Given: attached, When: port.AttachDevice{DeviceOwner: port.OwnerServer, DeviceID: "srv-2", At: t0},
			Then: dt.Refused(domain.Conflict, "port pt-1 is in use by compute:server srv-1; detach it first")},
		{Name: "attach to nothing", Given: created, When: port.AttachDevice{At: t0}, Then: dt.Refused(domain.Invalid, "needs a device owner and a device id")},
		{Name: "bind", Given: attached, When: port.Bind{Host: "node-1", At: t0}, Then: dt.Then(&port.Bound{Host: "node-1", At: t0})},
		{Name: "bind again", Given: bound, When: port.Bind{Host: "node-1", At: t0}, Then: dt.Then()},
		{Name: "bind elsewhere (a move)", Given: bound, When: port.Bind{Host: "node-2", At: t0}, Then: dt.Then(&port.Bound{Host: "node-2", At: t0})},
		{Name: "bind without a device", Given: created, When: port.Bind{Host: "node-1", At: t0}, Then: dt.Refused(domain.Conflict, "has no device; attach it to a server before binding")},
		{Name: "bind to no host", Given: attached, When: port.Bind{At: t0}, Then: dt.Refused(domain.Invalid, "host must not be empty")},
		{Name: "unbind", Given: bound, When: port.Unbind{At: t0}, Then: dt.Then(&port.Unbound{Host: "node-1", At: t0})},
		{Name: "unbind unbound", Given: attached, When: port.Unbind{At: t0}, Then: dt.Then()},
		{Name: "detach", Given: bound, When: port.DetachDevice{At: t0}, Then: dt.Then(&port.DeviceDetached{DeviceOwner: port.OwnerServer, DeviceID: "srv-1", At: t0})},
		{Name: "detach detached", Given: created, When: port.DetachDevice{At: t0}, Then: dt.Then()},
		{Name: "set security groups", Given: created, When: port.SetSecurityGroups{SecurityGroups: []string{"sg-1", "sg-2"}, At: t0},
			Then: dt.Then(&port.SecurityGroupsSet{SecurityGroups: []string{"sg-1", "sg-2"}, At: t0})},
		{Name: "set none", Given: created, When: port.SetSecurityGroups{At: t0}, Then: dt.Then(&port.SecurityGroupsSet{At: t0})},
		{Name: "set the same", Given: created, When: port.SetSecurityGroups{SecurityGroups: []string{"sg-1"}, At: t0}, Then: dt.Then()},
		{Name: "set one twice", Given: created, When: port.SetSecurityGroups{SecurityGroups: []string{"sg-2", "sg-2"}, At: t0}, Then: dt.Refused(domain.Invalid, "listed twice")},
		{Name: "delete lists its addresses", Given: created, When: port.Delete{At: t0}, Then: dt.Then(&port.Deleted{FixedIPs: ips, At: t0})},
		{Name: "delete a server's NIC", Given: bound, When: port.Delete{At: t0}, Then: dt.Refused(domain.Conflict, "port pt-1 is a NIC of server srv-1; detach it")},
		{Name: "the server's saga deletes its NIC", Given: bound, When: port.Delete{ByOwner: true, At: t0}, Then: dt.Then(&port.Deleted{FixedIPs: ips, At: t0})},
		{Name: "delete a router's port", Given: router, When: port.Delete{At: t0}, Then: dt.Refused(domain.Conflict, "port pt-1 belongs to network:router_interface r-1; remove it there")},
		{Name: "the router deletes its port", Given: router, When: port.Delete{ByOwner: true, At: t0}, Then: dt.Then(&port.Deleted{FixedIPs: ips, At: t0})},
		{Name: "delete twice", Given: deleted, When: port.Delete{At: t0}, Then: dt.Refused(domain.NotFound, "port pt-1 not found")},
		{Name: "bind a deleted port", Given: deleted, When: port.Bind{Host: "node-1", At: t0}, Then: dt.Refused(domain.NotFound, "not found")},
	})
	if s := dt.Fold(port.Decider, "pt-1", dt.Plus(bound, &port.DeviceDetached{DeviceOwner: port.OwnerServer, DeviceID: "srv-1", At: t0})); s.Host != "" || s.DeviceID != "" {
		t.Fatalf("a detached port keeps host %q, device %q", s.Host, s.DeviceID)
	}
}

// An id whose create never committed is closed by Abandon: a later create
// of it is refused with a reason the user can act on; an existing port
// (deleted too) cannot be abandoned.
func TestAbandon(t *testing.T) {
	abandoned := []domain.Event{&port.Abandoned{ID: "pt-1", Reason: "crash", At: t0}}
	dt.Run(t, port.Decider, "pt-1", []dt.Case[port.Command]{
		{Name: "a fresh id", When: port.Abandon{Reason: "crash", At: t0}, Then: dt.Then(abandoned...)},
		{Name: "twice", Given: abandoned, When: port.Abandon{Reason: "crash", At: t0}, Then: dt.Then()},
		{Name: "create after", Given: abandoned, When: create(func(*port.Create) {}), Then: dt.Refused(domain.Conflict, "send the request again with a new Idempotency-Key")},
		{Name: "an existing port", Given: created, When: port.Abandon{At: t0}, Then: dt.Refused(domain.Conflict, "port pt-1 exists")},
		{Name: "a deleted port", Given: deleted, When: port.Abandon{At: t0}, Then: dt.Refused(domain.Conflict, "port pt-1 exists")},
	})
}
