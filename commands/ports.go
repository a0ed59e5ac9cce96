package commands

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"slices"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/port"
	"github.com/keel-cloud/keel/domain/subnet"
)

// CreatePortRequest is a port a user asks for on a network.
type CreatePortRequest struct {
	Network string
	Name    string
	// Subnet is the subnet its address comes from ("": the network's first).
	Subnet string
	// IP asks for this address ("": the subnet's next free one).
	IP string
	// SecurityGroups are the groups the port joins (none: the project's
	// default group, unless port security is off).
	SecurityGroups []string
	// PortSecurity nil means on.
	PortSecurity *bool
	// DeviceOwner and DeviceID name what uses the port (port.OwnerServer
	// and the server id for a server's NIC); "" for a port a user made.
	DeviceOwner, DeviceID string
}

// PortMAC is the MAC address of a port: fa:16:3e (the prefix OpenStack
// uses, locally administered and unicast) and three bytes of a hash of the
// port's id, so a retried create gets the same one.
func PortMAC(id string) string {
	h := sha256.Sum256([]byte(id))
	return net.HardwareAddr{0xfa, 0x16, 0x3e, h[0], h[1], h[2]}.String()
}

// CreatePort makes a port with an address from its subnet. The steps, each
// keyed by the port's id (derived from the command id, so a retry repeats
// none of them): reserve a port of the project's quota; allocate an
// address from the subnet (batched, so that concurrent creates share the
// subnet's commits, and refused with "subnet exhausted" when none is
// left); record the port. A failure gives back what the earlier steps
// took; a crash between them is the address sweep's to repair
// (sagas/monitors), which abandons the port id first.
func (a *App) CreatePort(ctx context.Context, req CreatePortRequest, meta Meta) (Result[port.State], error) {
	id := DeriveID(meta.CommandID, "port")
	st, _, err := a.Ports.LoadLatest(ctx, id)
	if err != nil {
		return Result[port.State]{}, err
	}
	if st.Exists && !st.Deleted {
		return Result[port.State]{State: st, Duplicate: true}, nil // a retry of a create that landed
	}
	net, err := a.liveNetwork(ctx, req.Network, meta)
	if err != nil {
		return Result[port.State]{}, err
	}
	subnetID, err := pickSubnet(net.Subnets, string(net.ID), net.Name, req.Subnet)
	if err != nil {
		return Result[port.State]{}, err
	}
	cmd := port.Create{ID: port.ID(id), Network: string(net.ID), Project: net.Project, Name: req.Name, MAC: PortMAC(id), GeneratedMAC: true,
		PortSecurity: req.PortSecurity, DeviceOwner: req.DeviceOwner, DeviceID: req.DeviceID, At: a.Now().UTC()}
	if cmd.SecurityGroups, err = a.portGroups(ctx, net.Project, req, meta); err != nil {
		return Result[port.State]{}, err
	}
	// Decided against the id's state: an abandoned or deleted id is refused
	// before anything is reserved.
	if _, err := port.Decide(st, cmd); err != nil {
		return Result[port.State]{}, err
	}
	if err := a.reserve(ctx, net.Project, id, PortQuota, meta); err != nil {
		return Result[port.State]{}, err
	}
	ip, err := a.allocate(ctx, subnetID, id, req.IP, meta)
	if err != nil {
		return Result[port.State]{}, a.giveBack(ctx, net.Project, id, PortQuota, meta, err)
	}
	cmd.FixedIPs = []port.FixedIP{{Subnet: subnetID, IP: ip}}
	res, err := a.Ports.Create(ctx, id, cmd, meta)
	if err != nil {
		if st, _, lerr := a.Ports.LoadLatest(context.WithoutCancel(ctx), id); lerr == nil && st.Abandoned {
			return res, err // the sweep gave everything back
		}
		a.releaseAddress(ctx, subnetID, id, ip, meta)
		err = a.giveBack(ctx, net.Project, id, PortQuota, meta, err)
	}
	return res, err
}

// pickSubnet is the subnet a port's address comes from.
func pickSubnet(subnets []string, netID, netName, want string) (string, error) {
	switch {
	case want != "" && !slices.Contains(subnets, want):
		return "", domain.Invalidf("subnet %s is not a subnet of network %s", want, netName)
	case want != "":
		return want, nil
	case len(subnets) == 0:
		return "", domain.Conflictf("network %s (%s) has no subnet to give the port an address; create one first", netName, netID)
	}
	return subnets[0], nil
}

// portGroups checks the groups a port asks for, or gives it the project's
// default group (made now if the project has none yet).
func (a *App) portGroups(ctx context.Context, projectID string, req CreatePortRequest, meta Meta) ([]string, error) {
	if len(req.SecurityGroups) == 0 {
		if req.PortSecurity != nil && !*req.PortSecurity {
			return nil, nil
		}
		if err := a.EnsureDefaultSecurityGroup(ctx, projectID, meta); err != nil {
			return nil, err
		}
		return []string{DefaultSecurityGroupID(projectID)}, nil
	}
	for _, g := range req.SecurityGroups {
		if _, err := a.liveGroup(ctx, g, projectID); err != nil {
			return nil, err
		}
	}
	return req.SecurityGroups, nil
}

// SetPortSecurityGroups replaces the security groups of a port of the
// caller's project (a server's NIC too): each must be a live group of the
// port's project.
func (a *App) SetPortSecurityGroups(ctx context.Context, id string, groups []string, meta Meta) (Result[port.State], error) {
	pt, _, err := a.Ports.LoadLatest(ctx, id)
	if err != nil {
		return Result[port.State]{}, err
	}
	if !pt.Live() || (meta.Scope != "" && pt.Project != meta.Scope) {
		return Result[port.State]{}, domain.NotFoundf("port %s not found", id)
	}
	for _, g := range groups {
		if _, err := a.liveGroup(ctx, g, pt.Project); err != nil {
			return Result[port.State]{}, err
		}
	}
	return a.Ports.Handle(ctx, id, port.SetSecurityGroups{SecurityGroups: groups, At: a.Now().UTC()}, meta)
}

// allocate takes an address of a subnet for key and says which.
func (a *App) allocate(ctx context.Context, subnetID, key, ip string, meta Meta) (string, error) {
	m := meta
	m.CommandID, m.Scope = meta.CommandID+"/address", ""
	res, err := a.Subnets.HandleBatched(ctx, subnetID, subnet.Allocate{Key: key, IP: ip, At: a.Now().UTC()}, m)
	if err != nil {
		return "", err
	}
	return a.allocatedIP(ctx, subnetID, key, res)
}

// allocatedIP finds the address an Allocate for key took: in its events,
// or, for a retry of one that had landed, in the commit that holds it.
func (a *App) allocatedIP(ctx context.Context, subnetID, key string, res Result[subnet.State]) (string, error) {
	find := func(evs []domain.Event) (string, bool) {
		for _, ev := range evs {
			if e, ok := ev.(*subnet.AddressAllocated); ok && e.Key == key {
				return e.IP, true
			}
		}
		return "", false
	}
	if ip, ok := find(res.Events); ok {
		return ip, nil
	}
	envs, err := a.Subnets.store.Load(ctx, subnet.AggregateType, subnetID, res.Seq-1)
	if err != nil {
		return "", fmt.Errorf("read the address of port %s: %w", key, err)
	}
	for _, env := range envs {
		if env.Sequence != res.Seq {
			continue
		}
		evs, err := subnet.Decider.Registry.DecodeAll(env.Events)
		if err != nil {
			return "", err
		}
		if ip, ok := find(evs); ok {
			return ip, nil
		}
	}
	return "", fmt.Errorf("subnet %s: no address allocated to port %s in commit %d", subnetID, key, res.Seq)
}

// releaseAddress gives an address back to its subnet. A failure is left
// to the address sweep (no live port holds the address).
func (a *App) releaseAddress(ctx context.Context, subnetID, key, ip string, meta Meta) {
	m := meta
	m.CommandID, m.Scope = meta.CommandID+"/address-release/"+ip, ""
	_, _ = a.Subnets.HandleBatched(context.WithoutCancel(ctx), subnetID, subnet.Release{Key: key, IP: ip, At: a.Now().UTC()}, m)
}

// DeletePort deletes a port, gives its addresses back to their subnets and
// its quota back to its project. A port that something owns (a server's
// NIC, a router's leg, a floating IP's) is refused: it goes with its owner.
func (a *App) DeletePort(ctx context.Context, id string, meta Meta) (Result[port.State], error) {
	return a.deletePort(ctx, id, false, meta)
}

// DeleteOwnedPort is DeletePort for the owner of the port: a server's saga
// deleting its NIC's port (the build failed, the server or the interface
// went).
func (a *App) DeleteOwnedPort(ctx context.Context, id string, meta Meta) (Result[port.State], error) {
	return a.deletePort(ctx, id, true, meta)
}

func (a *App) deletePort(ctx context.Context, id string, byOwner bool, meta Meta) (Result[port.State], error) {
	res, err := a.Ports.Handle(ctx, id, port.Delete{ByOwner: byOwner, At: a.Now().UTC()}, meta)
	if err != nil {
		return res, err
	}
	for _, f := range res.State.FixedIPs {
		a.releaseAddress(ctx, f.Subnet, id, f.IP, meta)
	}
	a.release(ctx, res.State.Project, id, PortQuota, meta)
	return res, nil
}
