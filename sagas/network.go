package sagas

import (
	"context"
	"fmt"

	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/operation"
	"github.com/keel-cloud/keel/domain/port"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/sagas/servers"
)

// nicCommand is the command id of the create of a server's i-th port: the
// port's id derives from it (commands.CreatePort), so a retried step makes
// no second port, and the release finds the ports even when the step was
// cut short before it recorded them.
func nicCommand(sid string, i int) string { return fmt.Sprintf("server-nic/%s/%d", sid, i) }

// NICPortID is the id of the port made for a server's i-th network.
func NICPortID(sid string, i int) string {
	return commands.DeriveID(nicCommand(sid, i), "port")
}

// ports runs the network step of a create: a port on each network the
// server asked for, owned by the server, in the server's project (a network
// of another project is not found), then the server's NICs. A refusal a
// user can act on (no such network, subnet exhausted, quota) fails the step
// with its reason; the build's compensation deletes the ports made so far.
func (s *ServerSaga) ports(ctx context.Context, opID string) error {
	op, _, err := s.App.Operations.Load(ctx, opID)
	if err != nil {
		return err
	}
	sv, _, err := s.App.Servers.Load(ctx, op.ResourceID)
	if err != nil {
		return err
	}
	if op.Status != operation.Running || op.CurrentStep() != servers.StepNetwork || sv.Task != server.Scheduling || sv.NICs != nil {
		return nil // superseded, finished, or done already
	}
	sid := string(sv.ID)
	nics := make([]server.NIC, 0, len(sv.Networks))
	for i, netID := range sv.Networks {
		meta := commands.Meta{CommandID: nicCommand(sid, i), Actor: domain.Actor{User: "saga"}, CorrelationID: opID, Scope: sv.Project}
		res, err := s.App.CreatePort(ctx, commands.CreatePortRequest{Network: netID, Name: fmt.Sprintf("%s-eth%d", sv.Name, i),
			DeviceOwner: port.OwnerServer, DeviceID: sid}, meta)
		if err != nil {
			if domain.KindOf(err) == 0 {
				return err // transient: the runner retries the step
			}
			reason := fmt.Sprintf("network %d (%s): %s", i+1, netID, err.Error())
			return s.op(ctx, opID, fmt.Sprintf("network/failed/%d", op.Retries), operation.FailStep{Step: servers.StepNetwork, Reason: reason, At: s.now().UTC()})
		}
		p := res.State
		nic := server.NIC{Port: string(p.ID), Network: p.Network, MAC: p.MAC}
		for _, f := range p.FixedIPs {
			nic.IPs = append(nic.IPs, f.IP)
		}
		nics = append(nics, nic)
	}
	err = s.server(ctx, sid, opID, "nics", server.SetNICs{Operation: opID, NICs: nics, At: s.now().UTC()})
	return ignoreRefusal(s.Log, err, opID, "nics")
}

// releasePorts deletes the ports a server owns (its build failed, or it
// was deleted): those made for its networks (by their derived ids), its
// NICs, and the port of an attach that never finished (State.Ports). Each
// gives its address and quota back. Ports already gone, or never made, are
// fine.
func (s *ServerSaga) releasePorts(ctx context.Context, opID string) error {
	_, sv, err := s.opAndServer(ctx, opID)
	if err != nil {
		return err
	}
	sid := string(sv.ID)
	ids := sv.Ports(func(i int) string { return NICPortID(sid, i) }, func(attach string) string { return InterfacePortID(sid, attach) })
	for i, id := range ids {
		p, _, err := s.App.Ports.Load(ctx, id)
		if err != nil {
			return err
		}
		if !p.Exists || p.Deleted || p.DeviceID != sid {
			continue
		}
		meta := commands.Meta{CommandID: fmt.Sprintf("%s/release-port/%d", opID, i), Actor: domain.Actor{User: "saga"}, CorrelationID: opID}
		if err := s.deleteNIC(ctx, id, meta); err != nil {
			return err
		}
	}
	return nil
}

// deleteNIC deletes a port of a server's as its owner (address and quota
// given back) and disassociates the floating IPs that pointed at it.
func (s *ServerSaga) deleteNIC(ctx context.Context, portID string, meta commands.Meta) error {
	if _, err := s.App.DeleteOwnedPort(ctx, portID, meta); err != nil && domain.KindOf(err) != domain.NotFound {
		return err
	}
	if s.FloatingIPsOf == nil {
		return nil
	}
	fips, err := s.FloatingIPsOf(ctx, portID)
	if err == nil && len(fips) > 0 {
		m := meta
		m.CommandID = meta.CommandID + "/floating-ips"
		err = s.App.DisassociatePortFloatingIPs(ctx, portID, fips, m)
	}
	if err != nil {
		s.Log.Warn("floating IPs of a deleted port left to the sweep", "port", portID, "err", err)
	}
	return nil
}
