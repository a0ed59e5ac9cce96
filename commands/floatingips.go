package commands

import (
	"context"
	"fmt"
	"slices"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/floatingip"
	"github.com/keel-cloud/keel/domain/port"
	"github.com/keel-cloud/keel/domain/project"
	"github.com/keel-cloud/keel/domain/router"
)

// FloatingIPQuota is what a floating IP counts against its project.
var FloatingIPQuota = map[string]int{project.QuotaFloatingIPs: 1}

// CreateFloatingIP takes an address of an external network for the
// caller's project. The steps, keyed by the floating IP's id (derived from
// the command id, so a retry repeats none of them): reserve a floating IP
// of the project's quota; allocate an address from the network's subnets,
// in order ("subnet exhausted" when none has one left); record the
// floating IP. A failure gives back what the earlier steps took; a crash
// between them is the sweeps' to repair, which abandon the id first.
func (a *App) CreateFloatingIP(ctx context.Context, networkID string, meta Meta) (Result[floatingip.State], error) {
	id := DeriveID(meta.CommandID, "floating-ip")
	own, _, err := a.FloatingIPs.LoadLatest(ctx, id)
	if err != nil {
		return Result[floatingip.State]{}, err
	}
	if own.Exists {
		return Result[floatingip.State]{State: own, Duplicate: true}, nil // a retry of a create that landed
	}
	net, err := a.externalNetwork(ctx, networkID)
	if err != nil {
		return Result[floatingip.State]{}, err
	}
	if len(net.Subnets) == 0 {
		return Result[floatingip.State]{}, domain.Conflictf("external network %s (%s) has no subnet to take a floating IP from", net.Name, net.ID)
	}
	// Decided first, against the id's own state (an abandoned create is
	// refused) and with a stand-in address, so that a create the decider
	// refuses touches neither the quota nor the subnet.
	cmd := floatingip.Create{ID: floatingip.ID(id), Project: meta.Actor.Project, Network: string(net.ID), Subnet: net.Subnets[0], IP: "192.0.2.1", At: a.Now().UTC()}
	if _, err := floatingip.Decide(own, cmd); err != nil {
		return Result[floatingip.State]{}, err
	}
	if err := a.reserve(ctx, cmd.Project, id, FloatingIPQuota, meta); err != nil {
		return Result[floatingip.State]{}, err
	}
	if cmd.Subnet, cmd.IP, err = a.allocateFromAny(ctx, net.Subnets, id, meta); err != nil {
		return Result[floatingip.State]{}, a.giveBack(ctx, cmd.Project, id, FloatingIPQuota, meta, err)
	}
	res, err := a.FloatingIPs.Create(ctx, id, cmd, meta)
	if err != nil {
		if st, _, lerr := a.FloatingIPs.LoadLatest(context.WithoutCancel(ctx), id); lerr == nil && st.Abandoned {
			return res, err // the sweeps gave everything back
		}
		a.releaseAddress(ctx, cmd.Subnet, id, cmd.IP, meta)
		err = a.giveBack(ctx, cmd.Project, id, FloatingIPQuota, meta, err)
	}
	return res, err
}

// allocateFromAny takes an address for key from the first subnet that has
// one left.
func (a *App) allocateFromAny(ctx context.Context, subnets []string, key string, meta Meta) (string, string, error) {
	var err error
	for _, s := range subnets {
		var ip string
		if ip, err = a.allocate(ctx, s, key, "", meta); err == nil {
			return s, ip, nil
		}
		if domain.KindOf(err) != domain.Conflict {
			return "", "", err
		}
	}
	return "", "", err
}

// DeleteFloatingIP deletes a floating IP (disassociating it first), gives
// its address back to its subnet and its quota to its project.
func (a *App) DeleteFloatingIP(ctx context.Context, id string, meta Meta) (Result[floatingip.State], error) {
	res, err := a.FloatingIPs.Handle(ctx, id, floatingip.Delete{At: a.Now().UTC()}, meta)
	if err != nil {
		return res, err
	}
	for _, ev := range a.decidedEvents(ctx, id, res) {
		switch e := ev.(type) {
		case *floatingip.Disassociated:
			a.detachFromRouter(ctx, e.Association.Router, id, meta)
		case *floatingip.Deleted:
			a.releaseAddress(ctx, e.Subnet, id, e.IP, meta)
		}
	}
	a.release(ctx, res.State.Project, id, FloatingIPQuota, meta)
	return res, nil
}

// AssociateFloatingIP points a floating IP at a port of its project. The
// port must have a fixed IP on a subnet that a router with its gateway on
// the floating IP's external network has an interface on: that router
// translates it. The router records the floating IP first (so that it
// refuses to clear its gateway or drop the interface meanwhile), then the
// floating IP its association; a refused association detaches it again.
func (a *App) AssociateFloatingIP(ctx context.Context, id, portID string, meta Meta) (Result[floatingip.State], error) {
	fip, _, err := a.FloatingIPs.LoadLatest(ctx, id)
	if err != nil {
		return Result[floatingip.State]{}, err
	}
	if !fip.Live() || (meta.Scope != "" && fip.Project != meta.Scope) {
		return Result[floatingip.State]{}, domain.NotFoundf("floating IP %s not found", id)
	}
	pt, _, err := a.Ports.LoadLatest(ctx, portID)
	if err != nil {
		return Result[floatingip.State]{}, err
	}
	if !pt.Live() || pt.Project != fip.Project {
		return Result[floatingip.State]{}, domain.Invalidf("port %s does not exist", portID)
	}
	if x := fip.Assoc; x != nil && x.Port != portID {
		return Result[floatingip.State]{}, domain.Conflictf("floating IP %s is associated with port %s (%s); disassociate it first", fip.IP, x.Port, x.FixedIP)
	}
	rt, fixed, err := a.routerFor(ctx, fip, pt)
	if err != nil {
		return Result[floatingip.State]{}, err
	}
	at := a.Now().UTC()
	rm := meta
	rm.CommandID, rm.Scope = meta.CommandID+"/router", ""
	attached, err := a.Routers.Handle(ctx, string(rt.ID), router.AttachFloatingIP{FloatingIP: id, Network: fip.Network, Subnet: fixed.Subnet, At: at}, rm)
	if err != nil {
		return Result[floatingip.State]{}, err
	}
	if !slices.ContainsFunc(attached.State.FloatingIPs, func(f router.FloatingIP) bool { return f.ID == id }) {
		// A late retry of an association cut short, whose router attach
		// the floating IP sweep has undone since: the attach is not made
		// twice under one command id, so the association is not made
		// without it.
		return Result[floatingip.State]{}, domain.Conflictf("router %s let go of floating IP %s after an earlier try of this association was cut short; send the association again as a new request", rt.ID, fip.IP)
	}
	res, err := a.FloatingIPs.Handle(ctx, id, floatingip.Associate{Association: floatingip.Association{Port: portID, FixedIP: fixed.IP, Router: string(rt.ID)}, At: at}, meta)
	if err != nil && domain.KindOf(err) != 0 { // refused: it did not land
		if cur, _, lerr := a.FloatingIPs.LoadLatest(context.WithoutCancel(ctx), id); lerr == nil && (cur.Assoc == nil || cur.Assoc.Router != string(rt.ID)) {
			a.detachFromRouter(ctx, string(rt.ID), id, meta)
		}
	}
	return res, err
}

// routerFor finds the router that can translate fip to one of the port's
// fixed IPs: the one holding the gateway address of the fixed IP's subnet
// (its interface's port), with its gateway on fip's network.
func (a *App) routerFor(ctx context.Context, fip floatingip.State, pt port.State) (router.State, port.FixedIP, error) {
	if len(pt.FixedIPs) == 0 {
		return router.State{}, port.FixedIP{}, domain.Conflictf("port %s has no fixed IP for floating IP %s to point at", pt.ID, fip.IP)
	}
	for _, f := range pt.FixedIPs {
		sn, _, err := a.Subnets.LoadLatest(ctx, f.Subnet)
		if err != nil {
			return router.State{}, port.FixedIP{}, err
		}
		if sn.GatewayHolder == "" {
			continue
		}
		rif, _, err := a.Ports.LoadLatest(ctx, sn.GatewayHolder)
		if err != nil {
			return router.State{}, port.FixedIP{}, err
		}
		if !rif.Live() || rif.DeviceOwner != port.OwnerRouterInterface {
			continue
		}
		rt, _, err := a.Routers.LoadLatest(ctx, rif.DeviceID)
		if err != nil {
			return router.State{}, port.FixedIP{}, err
		}
		if rt.Live() && rt.Gateway != nil && rt.Gateway.Network == fip.Network {
			return rt, f, nil
		}
	}
	return router.State{}, port.FixedIP{}, domain.Conflictf("floating IP %s cannot reach port %s: no router with a gateway on external network %s has an interface on a subnet of the port (%v); add one",
		fip.IP, pt.ID, fip.Network, subnetsOf(pt.FixedIPs))
}

func subnetsOf(ips []port.FixedIP) []string {
	out := make([]string, len(ips))
	for i, f := range ips {
		out[i] = f.Subnet
	}
	return out
}

// DisassociateFloatingIP points a floating IP nowhere, and lets its router
// go of it.
func (a *App) DisassociateFloatingIP(ctx context.Context, id string, meta Meta) (Result[floatingip.State], error) {
	before, _, err := a.FloatingIPs.LoadLatest(ctx, id)
	if err != nil {
		return Result[floatingip.State]{}, err
	}
	res, err := a.FloatingIPs.Handle(ctx, id, floatingip.Disassociate{At: a.Now().UTC()}, meta)
	if err != nil {
		return res, err
	}
	for _, ev := range a.decidedEvents(ctx, id, res) {
		if e, ok := ev.(*floatingip.Disassociated); ok {
			a.detachFromRouter(ctx, e.Association.Router, id, meta)
		}
	}
	if res.Events == nil && before.Assoc != nil {
		// Disassociated meanwhile by another request: make sure its router
		// let go too (a no-op when it did).
		a.detachFromRouter(ctx, before.Assoc.Router, id, meta)
	}
	return res, nil
}

// decidedEvents are the events a floating IP command decided: those it
// wrote now, or, for a retry of one that had landed, those of the commit
// that holds it, so that a retry repeats the steps that follow it (the
// router's detach, the releases: each is idempotent) when they were lost.
func (a *App) decidedEvents(ctx context.Context, id string, res Result[floatingip.State]) []domain.Event {
	if !res.Duplicate || res.Seq == 0 {
		return res.Events
	}
	envs, err := a.FloatingIPs.store.Load(ctx, floatingip.AggregateType, id, res.Seq-1)
	if err != nil {
		return nil
	}
	for _, env := range envs {
		if env.Sequence == res.Seq {
			evs, err := floatingip.Decider.Registry.DecodeAll(env.Events)
			if err == nil {
				return evs
			}
		}
	}
	return nil
}

// ReleaseRouterFloatingIP makes a router let go of a floating IP that, read
// from the log, is not associated through it: what an association cut
// short after the router's attach, or a disassociation cut short before
// the router's detach, leaves (the floating IP sweep finds them). It
// reports whether the router let go; a floating IP associated through the
// router after all (the read model was behind) is left as it is.
func (a *App) ReleaseRouterFloatingIP(ctx context.Context, routerID, fipID string, meta Meta) (bool, error) {
	fip, _, err := a.FloatingIPs.LoadLatest(ctx, fipID)
	if err != nil {
		return false, err
	}
	if fip.Live() && fip.Assoc != nil && fip.Assoc.Router == routerID {
		return false, nil
	}
	res, err := a.Routers.Handle(ctx, routerID, router.DetachFloatingIP{FloatingIP: fipID, At: a.Now().UTC()}, meta)
	if domain.KindOf(err) == domain.NotFound {
		return false, nil // the router is gone, and its list with it
	}
	return err == nil && len(res.Events) > 0, err
}

// detachFromRouter makes a router let go of a floating IP. A failure is
// left to the floating IP sweep (sagas/monitors, ReleaseRouterFloatingIP).
func (a *App) detachFromRouter(ctx context.Context, routerID, fipID string, meta Meta) {
	m := meta
	m.CommandID, m.Scope = meta.CommandID+"/router-detach", ""
	_, _ = a.Routers.Handle(context.WithoutCancel(ctx), routerID, router.DetachFloatingIP{FloatingIP: fipID, At: a.Now().UTC()}, m)
}

// DisassociatePortFloatingIPs disassociates the floating IPs that point at
// a port that is gone (as Neutron does when a port is deleted): ids are the
// floating IPs the caller found pointing at it (the API after a port
// delete, the floating IP sweep after any other). Nothing is done while
// the port is live.
func (a *App) DisassociatePortFloatingIPs(ctx context.Context, portID string, ids []string, meta Meta) error {
	if pt, _, err := a.Ports.LoadLatest(ctx, portID); err != nil || pt.Live() {
		return err // the port is there after all (the read model was behind)
	}
	var first error
	for _, id := range ids {
		st, _, err := a.FloatingIPs.LoadLatest(ctx, id)
		if err != nil || st.Assoc == nil || st.Assoc.Port != portID {
			first = cmpFirst(first, err)
			continue
		}
		m := meta
		m.CommandID = meta.CommandID + "/" + id
		if _, err := a.DisassociateFloatingIP(ctx, id, m); err != nil {
			first = cmpFirst(first, fmt.Errorf("disassociate floating IP %s from deleted port %s: %w", id, portID, err))
		}
	}
	return first
}

func cmpFirst(first, err error) error {
	if first != nil {
		return first
	}
	return err
}
