package commands

import (
	"context"
	"fmt"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/network"
	"github.com/keel-cloud/keel/domain/port"
	"github.com/keel-cloud/keel/domain/project"
	"github.com/keel-cloud/keel/domain/router"
	"github.com/keel-cloud/keel/domain/subnet"
)

// RouterQuota is what a router counts against its project. Its ports (an
// interface's, the gateway's) are part of it and count against no port
// quota (see ADR 26).
var RouterQuota = map[string]int{project.QuotaRouters: 1}

// CreateRouter reserves a router of the caller's project quota and records
// the router. The id derives from the command id, so a retried create
// yields the same router; a crash between the two steps is the quota
// sweep's to repair (it abandons the router id first).
func (a *App) CreateRouter(ctx context.Context, name string, meta Meta) (Result[router.State], error) {
	id := DeriveID(meta.CommandID, "router")
	cmd := router.Create{ID: router.ID(id), Project: meta.Actor.Project, Name: name, At: a.Now().UTC()}
	// Decided against the id's own state first: an abandoned create is
	// refused before it reserves anything. A router that exists is a retry
	// of a create that landed: its steps answer as duplicates.
	own, _, err := a.Routers.LoadLatest(ctx, id)
	if err != nil {
		return Result[router.State]{}, err
	}
	if _, err := router.Decide(own, cmd); err != nil && !own.Exists {
		return Result[router.State]{}, err
	}
	if err := a.reserve(ctx, cmd.Project, id, RouterQuota, meta); err != nil {
		return Result[router.State]{}, err
	}
	res, err := a.Routers.Create(ctx, id, cmd, meta)
	if err != nil {
		if st, _, lerr := a.Routers.LoadLatest(context.WithoutCancel(ctx), id); lerr != nil || !st.Abandoned {
			err = a.giveBack(ctx, cmd.Project, id, RouterQuota, meta, err)
		}
	}
	return res, err
}

// DeleteRouter deletes a router without interfaces (and without floating
// IPs); its gateway's port goes with it, and its quota back.
func (a *App) DeleteRouter(ctx context.Context, id string, meta Meta) (Result[router.State], error) {
	res, err := a.Routers.Handle(ctx, id, router.Delete{At: a.Now().UTC()}, meta)
	if err != nil || res.Duplicate {
		return res, err
	}
	a.dropLegPorts(ctx, res.Events, meta)
	a.release(ctx, res.State.Project, id, RouterQuota, meta)
	return res, nil
}

// AddRouterInterface connects a router to a subnet of its project. The
// steps, keyed by the interface port's id (derived from the command id, so
// a retry repeats none of them): take the subnet's gateway address (one
// router at a time: a second is refused), make the port (owner
// network:router_interface, device the router, no port security), record
// the interface on the router. A failure undoes the earlier steps; a crash
// after the address is the address sweep's to repair.
func (a *App) AddRouterInterface(ctx context.Context, routerID, subnetID string, meta Meta) (Result[router.State], error) {
	rt, err := a.liveRouter(ctx, routerID, meta)
	if err != nil {
		return Result[router.State]{}, err
	}
	sn, _, err := a.Subnets.LoadLatest(ctx, subnetID)
	if err != nil {
		return Result[router.State]{}, err
	}
	if !sn.Live() || sn.Project != rt.Project {
		return Result[router.State]{}, domain.Invalidf("subnet %s does not exist", subnetID)
	}
	if sn.Gateway == "" {
		return Result[router.State]{}, domain.Conflictf("subnet %s (%s) has no gateway address for the router's interface to take; create the subnet with a gateway", subnetID, sn.CIDR)
	}
	pid := DeriveID(meta.CommandID, "router-interface")
	leg := legPort{id: pid, network: sn.Network, project: rt.Project, subnet: subnetID, owner: port.OwnerRouterInterface, router: routerID, gateway: true}
	if h := sn.GatewayHolder; h != "" && h != pid {
		// Said here with the holder's name; two adds at once are refused by
		// the subnet itself ("already in use: a router has an interface").
		return Result[router.State]{}, domain.Conflictf("subnet %s (%s) already has a router interface (port %s) on its gateway %s; a subnet connects to one router", subnetID, sn.CIDR, h, sn.Gateway)
	}
	ip, err := a.makeLegPort(ctx, leg, meta)
	if err != nil {
		return Result[router.State]{}, err
	}
	rm := meta
	rm.CommandID = meta.CommandID + "/router"
	res, err := a.Routers.Handle(ctx, routerID, router.AddInterface{Interface: router.Interface{Subnet: subnetID, CIDR: sn.CIDR, Port: pid, IP: ip}, At: a.Now().UTC()}, rm)
	if err != nil {
		a.dropLegPort(ctx, pid, meta)
	}
	return res, err
}

// RemoveRouterInterface disconnects a router from a subnet and deletes the
// interface's port (its address goes back to the subnet). Refused while a
// floating IP reaches a port through it.
func (a *App) RemoveRouterInterface(ctx context.Context, routerID, subnetID string, meta Meta) (Result[router.State], error) {
	res, err := a.Routers.Handle(ctx, routerID, router.RemoveInterface{Subnet: subnetID, At: a.Now().UTC()}, meta)
	if err != nil {
		return res, err
	}
	a.dropLegPorts(ctx, res.Events, meta)
	return res, nil
}

// SetRouterGatewayRequest is the external network a router's gateway is to
// be on, and whether it translates its subnets' traffic (SNAT).
type SetRouterGatewayRequest struct {
	Network string
	// SNAT nil means on (as Neutron does).
	SNAT *bool
}

// SetRouterGateway gives a router a gateway on an external network (a port
// with an address of the network's first subnet, owner
// network:router_gateway), or changes its SNAT when it has one there. A
// gateway on another network is refused until it is cleared.
func (a *App) SetRouterGateway(ctx context.Context, routerID string, req SetRouterGatewayRequest, meta Meta) (Result[router.State], error) {
	rt, err := a.liveRouter(ctx, routerID, meta)
	if err != nil {
		return Result[router.State]{}, err
	}
	net, err := a.externalNetwork(ctx, req.Network)
	if err != nil {
		return Result[router.State]{}, err
	}
	snat := req.SNAT == nil || *req.SNAT
	at := a.Now().UTC()
	if g := rt.Gateway; g != nil {
		if g.Network != string(net.ID) {
			return Result[router.State]{}, domain.Conflictf("router %s already has a gateway on network %s (%s); clear it first", rt.Name, g.Network, g.IP)
		}
		ng := *g
		ng.SNAT = snat
		return a.Routers.Handle(ctx, routerID, router.SetGateway{Gateway: ng, At: at}, meta)
	}
	subnetID, err := pickSubnet(net.Subnets, string(net.ID), net.Name, "")
	if err != nil {
		return Result[router.State]{}, err
	}
	sn, _, err := a.Subnets.LoadLatest(ctx, subnetID)
	if err != nil {
		return Result[router.State]{}, err
	}
	pid := DeriveID(meta.CommandID, "router-gateway")
	ip, err := a.makeLegPort(ctx, legPort{id: pid, network: string(net.ID), project: rt.Project, subnet: subnetID, owner: port.OwnerRouterGateway, router: routerID}, meta)
	if err != nil {
		return Result[router.State]{}, err
	}
	rm := meta
	rm.CommandID = meta.CommandID + "/router"
	res, err := a.Routers.Handle(ctx, routerID, router.SetGateway{Gateway: router.Gateway{Network: string(net.ID), Subnet: subnetID, CIDR: sn.CIDR,
		Port: pid, IP: ip, SNAT: snat}, At: at}, rm)
	if err != nil {
		a.dropLegPort(ctx, pid, meta)
	}
	return res, err
}

// ClearRouterGateway takes a router's gateway away and deletes its port.
// Refused while floating IPs are translated through it.
func (a *App) ClearRouterGateway(ctx context.Context, routerID string, meta Meta) (Result[router.State], error) {
	res, err := a.Routers.Handle(ctx, routerID, router.ClearGateway{At: a.Now().UTC()}, meta)
	if err != nil {
		return res, err
	}
	a.dropLegPorts(ctx, res.Events, meta)
	return res, nil
}

// liveRouter loads a router the caller may use: one of its own project, or
// any for a cloud admin (meta.Scope "").
func (a *App) liveRouter(ctx context.Context, id string, meta Meta) (router.State, error) {
	st, _, err := a.Routers.LoadLatest(ctx, id)
	if err != nil {
		return st, err
	}
	if !st.Live() || (meta.Scope != "" && st.Project != meta.Scope) {
		return st, domain.NotFoundf("router %s not found", id)
	}
	return st, nil
}

// externalNetwork loads a live external network: any project may put a
// router's gateway or take a floating IP there, whoever made it.
func (a *App) externalNetwork(ctx context.Context, id string) (network.State, error) {
	st, _, err := a.Networks.LoadLatest(ctx, id)
	if err != nil {
		return st, err
	}
	if !st.Live() {
		return st, domain.Invalidf("network %s does not exist", id)
	}
	if !st.External {
		return st, domain.Invalidf("network %s (%s) is not an external network: gateways and floating IPs come from an external one", st.Name, id)
	}
	return st, nil
}

// legPort is a port a router makes for one of its legs.
type legPort struct {
	id, network, project, subnet string
	owner, router                string
	// gateway takes the subnet's gateway address (an interface's port).
	gateway bool
}

// makeLegPort allocates the address of a router's leg and makes its port;
// it returns the address. A port that exists already (a retry) is taken
// as it is.
func (a *App) makeLegPort(ctx context.Context, l legPort, meta Meta) (string, error) {
	if st, _, err := a.Ports.LoadLatest(ctx, l.id); err != nil {
		return "", err
	} else if st.Live() && len(st.FixedIPs) > 0 {
		return st.FixedIPs[0].IP, nil // a retry: the port was made
	} else if st.Exists || st.Abandoned {
		// A retry after the port was deleted (by the router port sweep, or
		// its leg removed) must not record a leg on a port that is gone.
		return "", domain.Conflictf("the router's port %s of this request is gone (cut short and cleaned up, or removed since); send the request again with a new Idempotency-Key", l.id)
	}
	m := meta
	m.CommandID, m.Scope = meta.CommandID+"/address", ""
	ares, err := a.Subnets.HandleBatched(ctx, l.subnet, subnet.Allocate{Key: l.id, Gateway: l.gateway, At: a.Now().UTC()}, m)
	if err != nil {
		return "", err
	}
	ip, err := a.allocatedIP(ctx, l.subnet, l.id, ares)
	if err != nil {
		return "", err
	}
	off := false
	m.CommandID = meta.CommandID + "/port"
	_, err = a.Ports.Create(ctx, l.id, port.Create{ID: port.ID(l.id), Network: l.network, Project: l.project, MAC: PortMAC(l.id), GeneratedMAC: true,
		FixedIPs: []port.FixedIP{{Subnet: l.subnet, IP: ip}}, PortSecurity: &off, DeviceOwner: l.owner, DeviceID: l.router, At: a.Now().UTC()}, m)
	if err != nil {
		if st, _, lerr := a.Ports.LoadLatest(context.WithoutCancel(ctx), l.id); lerr == nil && st.Abandoned {
			return "", err // the sweep gave the address back
		}
		a.releaseAddress(ctx, l.subnet, l.id, ip, meta)
		return "", fmt.Errorf("make the router's port: %w", err)
	}
	return ip, nil
}

// dropLegPorts deletes the ports of the legs a router let go of in events.
func (a *App) dropLegPorts(ctx context.Context, events []domain.Event, meta Meta) {
	for _, ev := range events {
		switch e := ev.(type) {
		case *router.InterfaceRemoved:
			a.dropLegPort(ctx, e.Interface.Port, meta)
		case *router.GatewayCleared:
			a.dropLegPort(ctx, e.Gateway.Port, meta)
		}
	}
}

// dropLegPort deletes a router's port and gives its address back. A
// failure leaves the port to a retry of the request (the port stays
// visible, owned by the router).
func (a *App) dropLegPort(ctx context.Context, id string, meta Meta) {
	m := meta
	m.CommandID, m.Scope = meta.CommandID+"/port-delete/"+id, ""
	res, err := a.Ports.Handle(context.WithoutCancel(ctx), id, port.Delete{ByOwner: true, At: a.Now().UTC()}, m)
	if err != nil {
		return
	}
	for _, f := range res.State.FixedIPs {
		a.releaseAddress(ctx, f.Subnet, id, f.IP, m)
	}
}

// DropOrphanedLegPort deletes a port a router owns (an interface's or a
// gateway's) that the router does not list: what a crash between the
// port's create and the router's event leaves (the router port sweep finds
// them in the read model). The port and the router are read from the log
// first; it reports whether the port was deleted.
func (a *App) DropOrphanedLegPort(ctx context.Context, portID string, meta Meta) (bool, error) {
	pt, _, err := a.Ports.LoadLatest(ctx, portID)
	if err != nil || !pt.Live() || (pt.DeviceOwner != port.OwnerRouterInterface && pt.DeviceOwner != port.OwnerRouterGateway) {
		return false, err
	}
	rt, _, err := a.Routers.LoadLatest(ctx, pt.DeviceID)
	if err != nil {
		return false, err
	}
	if rt.Live() && rt.HasPort(portID) {
		return false, nil // the read model was behind
	}
	a.dropLegPort(ctx, portID, meta)
	st, _, err := a.Ports.LoadLatest(ctx, portID)
	return err == nil && !st.Live(), err
}
