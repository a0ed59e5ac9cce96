package sagas

import (
	"context"
	"fmt"
	"slices"

	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/operation"
	"github.com/keel-cloud/keel/domain/port"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/sagas/servers"
)

// ifaceCommand is the command id of the create of the port an attach
// operation makes: one port per operation, so a retried step makes no
// second one, and its id is known to the release even when the step was
// cut short before it recorded the port.
func ifaceCommand(sid, opID string) string { return fmt.Sprintf("server-iface/%s/%s", sid, opID) }

// InterfacePortID is the id of the port made by attach operation opID of
// server sid.
func InterfacePortID(sid, opID string) string {
	return commands.DeriveID(ifaceCommand(sid, opID), "port")
}

// interfacePort runs the network step of an attach: a port on the network
// asked for, owned by the server, in its project, then recorded as the
// interface's port (which asks the host to plug it). A refusal a user can
// act on (no such network, subnet exhausted, quota) fails the step with its
// reason.
func (s *ServerSaga) interfacePort(ctx context.Context, opID string) error {
	op, sv, err := s.opAndServer(ctx, opID)
	if err != nil {
		return err
	}
	if op.Status != operation.Running || op.CurrentStep() != servers.StepNetwork ||
		sv.Task != server.AttachingInterface || sv.Operation != opID || sv.Pending.Port != "" {
		return nil // superseded, finished, or done already
	}
	sid := string(sv.ID)
	meta := commands.Meta{CommandID: ifaceCommand(sid, opID), Actor: domain.Actor{User: "saga"}, CorrelationID: opID, Scope: sv.Project}
	res, err := s.App.CreatePort(ctx, commands.CreatePortRequest{Network: sv.Pending.Network, Name: fmt.Sprintf("%s-eth%d", sv.Name, len(sv.NICs)),
		DeviceOwner: port.OwnerServer, DeviceID: sid}, meta)
	if err != nil {
		if domain.KindOf(err) == 0 {
			return err // transient: the runner retries the step
		}
		reason := fmt.Sprintf("network %s: %s", sv.Pending.Network, err.Error())
		return s.op(ctx, opID, fmt.Sprintf("network/failed/%d", op.Retries), operation.FailStep{Step: servers.StepNetwork, Reason: reason, At: s.now().UTC()})
	}
	err = s.server(ctx, sid, opID, "interface-port", server.SetInterfacePort{Operation: opID, NIC: nicOf(res.State), At: s.now().UTC()})
	return ignoreRefusal(s.Log, err, opID, "interface-port")
}

// nicOf is the NIC a port makes.
func nicOf(p port.State) server.NIC {
	nic := server.NIC{Port: string(p.ID), Network: p.Network, MAC: p.MAC}
	for _, f := range p.FixedIPs {
		nic.IPs = append(nic.IPs, f.IP)
	}
	return nic
}

// releaseInterfacePort deletes the port of an attach that failed (made or
// not: it is found by its derived id), unless the server has it as a NIC.
func (s *ServerSaga) releaseInterfacePort(ctx context.Context, opID string) error {
	op, _, err := s.App.Operations.Load(ctx, opID)
	if err != nil {
		return err
	}
	return s.deleteNICPort(ctx, opID, InterfacePortID(op.ResourceID, opID))
}

// deleteNICPort deletes a port of the operation's server that is not (or
// no longer) one of its NICs: the port a detach unplugged, or that of a
// failed attach. A port gone, never made, or owned by another is left.
func (s *ServerSaga) deleteNICPort(ctx context.Context, opID, portID string) error {
	op, sv, err := s.opAndServer(ctx, opID)
	if err != nil {
		return err
	}
	sid := op.ResourceID
	if portID == "" || slices.ContainsFunc(sv.NICs, func(n server.NIC) bool { return n.Port == portID }) {
		return nil
	}
	p, _, err := s.App.Ports.Load(ctx, portID)
	if err != nil {
		return err
	}
	if !p.Exists || p.Deleted || p.DeviceID != sid {
		return nil
	}
	meta := commands.Meta{CommandID: opID + "/delete-port/" + portID, Actor: domain.Actor{User: "saga"}, CorrelationID: opID}
	return s.deleteNIC(ctx, portID, meta)
}

// opAndServer loads an operation and the server it is about.
func (s *ServerSaga) opAndServer(ctx context.Context, opID string) (operation.State, server.State, error) {
	op, _, err := s.App.Operations.Load(ctx, opID)
	if err != nil {
		return op, server.State{}, err
	}
	sv, _, err := s.App.Servers.Load(ctx, op.ResourceID)
	return op, sv, err
}
