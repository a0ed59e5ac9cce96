package commands

import (
	"context"
	"fmt"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/network"
	"github.com/keel-cloud/keel/domain/project"
	"github.com/keel-cloud/keel/domain/subnet"
)

// What networks, ports and security groups count against their project
// (each reservation is keyed by the resource's id).
var (
	NetworkQuota       = map[string]int{project.QuotaNetworks: 1}
	PortQuota          = map[string]int{project.QuotaPorts: 1}
	SecurityGroupQuota = map[string]int{project.QuotaSecurityGroups: 1}
)

// CreateNetworkRequest is a network a user asks for.
type CreateNetworkRequest struct {
	Name            string
	Kind            network.Kind
	PhysicalNetwork string
	VLAN            int
	External        bool
	MTU             int
}

// CreateNetwork reserves a network of the caller's project quota and
// records the network; the project's default security group is made with
// its first network. The id derives from the command id, so a retried
// create yields the same network.
func (a *App) CreateNetwork(ctx context.Context, req CreateNetworkRequest, meta Meta) (Result[network.State], error) {
	id := DeriveID(meta.CommandID, "network")
	cmd := network.Create{ID: network.ID(id), Project: meta.Actor.Project, Name: req.Name, Kind: req.Kind,
		PhysicalNetwork: req.PhysicalNetwork, VLAN: req.VLAN, External: req.External, MTU: req.MTU, At: a.Now().UTC()}
	// Decided against the id's own state: a retry of an abandoned create
	// is refused before anything is reserved.
	st, _, err := a.Networks.LoadLatest(ctx, id)
	if err != nil {
		return Result[network.State]{}, err
	}
	if _, err := network.Decide(st, cmd); err != nil {
		if st.Live() {
			return Result[network.State]{State: st, Duplicate: true}, nil // a retry of a create that landed
		}
		return Result[network.State]{}, err
	}
	// A provider segment (a VLAN, or a whole flat physical network) is one
	// network's: reserved like a unique name, held by the network's id.
	seg, segWords, provider := segmentOf(cmd.Kind, cmd.PhysicalNetwork, cmd.VLAN)
	if provider {
		if err := a.reserveName(ctx, KindSegment, "", seg, id); err != nil {
			if domain.KindOf(err) == domain.Conflict {
				return Result[network.State]{}, domain.Conflictf("%s is in use by another network; a provider segment carries one network", segWords)
			}
			return Result[network.State]{}, err
		}
	}
	if err := a.reserve(ctx, cmd.Project, id, NetworkQuota, meta); err != nil {
		if provider {
			a.releaseName(context.WithoutCancel(ctx), KindSegment, "", seg, id)
		}
		return Result[network.State]{}, err
	}
	res, err := a.Networks.Create(ctx, id, cmd, meta)
	if err != nil {
		if !a.networkAbandoned(ctx, id) {
			err = a.giveBack(ctx, cmd.Project, id, NetworkQuota, meta, err)
		}
		if provider {
			a.releaseName(context.WithoutCancel(ctx), KindSegment, "", seg, id)
		}
		return res, err
	}
	// The group is the project's whether or not this succeeds; a port
	// made later asks again.
	_ = a.EnsureDefaultSecurityGroup(context.WithoutCancel(ctx), cmd.Project, meta)
	return res, nil
}

// DeleteNetwork deletes a network without subnets and gives its quota back.
func (a *App) DeleteNetwork(ctx context.Context, id string, meta Meta) (Result[network.State], error) {
	res, err := a.Networks.Handle(ctx, id, network.Delete{At: a.Now().UTC()}, meta)
	if err != nil || res.Duplicate {
		return res, err
	}
	// A release lost here is left to the quota sweep (no live network
	// holds the reservation); a segment's, to the next network that asks
	// for it (its holder is deleted).
	a.release(ctx, res.State.Project, id, NetworkQuota, meta)
	if seg, _, provider := segmentOf(res.State.Kind, res.State.PhysicalNetwork, res.State.VLAN); provider {
		a.releaseName(context.WithoutCancel(ctx), KindSegment, "", seg, id)
	}
	return res, nil
}

// segmentOf is the reservation name of a provider network's segment, the
// segment in words, and whether it has one (an overlay network has none).
func segmentOf(kind network.Kind, physnet string, vlan int) (name, words string, ok bool) {
	switch kind {
	case network.VLAN:
		return fmt.Sprintf("%s/vlan/%d", physnet, vlan), fmt.Sprintf("VLAN %d on physical network %s", vlan, physnet), true
	case network.Flat:
		return physnet + "/flat", "flat physical network " + physnet, true
	}
	return "", "", false
}

func (a *App) networkAbandoned(ctx context.Context, id string) bool {
	st, _, err := a.Networks.LoadLatest(context.WithoutCancel(ctx), id)
	return err == nil && st.Abandoned
}

// CreateSubnetRequest is a subnet a user asks for on a network.
type CreateSubnetRequest struct {
	Network string
	Name    string
	CIDR    string
	Gateway string
	DHCP    *bool
	DNS     []string
	Pools   []subnet.Pool
	Routes  []subnet.Route
}

// CreateSubnet records a subnet on a network of the caller's project. The
// network lists the subnet first (network.subnet_added), so that it is not
// deleted under it; a subnet the network refuses, or whose create is
// refused, is taken off the network again. A subnet overlapping another
// one of its network is refused by the network's commit (two networks may
// use the same CIDR).
func (a *App) CreateSubnet(ctx context.Context, req CreateSubnetRequest, meta Meta) (Result[subnet.State], error) {
	net, err := a.liveNetwork(ctx, req.Network, meta)
	if err != nil {
		return Result[subnet.State]{}, err
	}
	id := DeriveID(meta.CommandID, "subnet")
	cmd := subnet.Create{ID: subnet.ID(id), Network: string(net.ID), Project: net.Project, Name: req.Name, CIDR: req.CIDR,
		Gateway: req.Gateway, DHCP: req.DHCP, DNS: req.DNS, Pools: req.Pools, Routes: req.Routes, At: a.Now().UTC()}
	if _, err := subnet.Decide(subnet.Decider.Initial(id), cmd); err != nil {
		return Result[subnet.State]{}, err
	}
	nm := meta
	nm.CommandID, nm.Scope = meta.CommandID+"/network", ""
	if _, err := a.Networks.Handle(ctx, string(net.ID), network.AddSubnet{Subnet: id, CIDR: req.CIDR, At: cmd.At}, nm); err != nil {
		return Result[subnet.State]{}, err
	}
	res, err := a.Subnets.Create(ctx, id, cmd, meta)
	if err != nil {
		nm.CommandID = meta.CommandID + "/network-undo"
		if _, rerr := a.Networks.Handle(context.WithoutCancel(ctx), string(net.ID), network.RemoveSubnet{Subnet: id, At: cmd.At}, nm); rerr != nil {
			err = fmt.Errorf("%w (and network %s still lists the subnet: %v)", err, net.ID, rerr)
		}
	}
	return res, err
}

// DeleteSubnet deletes a subnet that hands out no address and takes it off
// its network.
func (a *App) DeleteSubnet(ctx context.Context, id string, meta Meta) (Result[subnet.State], error) {
	res, err := a.Subnets.Handle(ctx, id, subnet.Delete{At: a.Now().UTC()}, meta)
	if err != nil {
		return res, err
	}
	nm := meta
	nm.CommandID, nm.Scope = meta.CommandID+"/network", ""
	if _, err := a.Networks.Handle(context.WithoutCancel(ctx), res.State.Network, network.RemoveSubnet{Subnet: id, At: a.Now().UTC()}, nm); err != nil && domain.KindOf(err) != domain.NotFound {
		return res, fmt.Errorf("subnet %s is deleted, but network %s still lists it (delete the subnet again): %w", id, res.State.Network, err)
	}
	return res, nil
}

// liveNetwork loads a network the caller may use: one of its own project,
// or any for a cloud admin (meta.Scope "").
func (a *App) liveNetwork(ctx context.Context, id string, meta Meta) (network.State, error) {
	st, _, err := a.Networks.LoadLatest(ctx, id)
	if err != nil {
		return network.State{}, err
	}
	if !st.Live() || (meta.Scope != "" && st.Project != meta.Scope) {
		return network.State{}, domain.Invalidf("network %s does not exist", id)
	}
	return st, nil
}

// giveBack releases a reservation made for a create that failed with err,
// and says so in the error when the release fails too.
func (a *App) giveBack(ctx context.Context, projectID, key string, amounts map[string]int, meta Meta, err error) error {
	if projectID == "" {
		return err
	}
	rm := meta
	rm.CommandID, rm.Scope = meta.CommandID+"/quota-release", ""
	if _, rerr := a.Projects.HandleBatched(context.WithoutCancel(ctx), projectID, project.Release{Key: key, Amounts: amounts, At: a.Now().UTC()}, rm); rerr != nil {
		return fmt.Errorf("%w (and its quota reservation stays until the sweep gives it back: %v)", err, rerr)
	}
	return err
}

// release gives back the reservation of a resource that is gone. A
// failure is left to the quota sweep: no live resource holds the key.
func (a *App) release(ctx context.Context, projectID, key string, amounts map[string]int, meta Meta) {
	if projectID == "" {
		return
	}
	rm := meta
	rm.CommandID, rm.Scope = meta.CommandID+"/quota-release", ""
	_, _ = a.Projects.HandleBatched(context.WithoutCancel(ctx), projectID, project.Release{Key: key, Amounts: amounts, At: a.Now().UTC()}, rm)
}
