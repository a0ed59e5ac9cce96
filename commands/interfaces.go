package commands

import (
	"context"
	"fmt"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/server"
)

// AttachInterface asks for a NIC on a network (an id) for server id: the
// network must be live and in the server's project; the saga makes the
// port and the host plugs it. It returns the server and the operation.
func (a *App) AttachInterface(ctx context.Context, id, networkID string, meta Meta) (Result[server.State], string, error) {
	sv, _, err := a.Servers.Load(ctx, id)
	if err != nil {
		return Result[server.State]{}, "", err
	}
	// A server the caller cannot see is refused by the handler, as not
	// found, before its network is looked at.
	if sv.Exists && (meta.Scope == "" || sv.Project == meta.Scope) {
		st, err := a.liveNetwork(ctx, networkID, meta)
		if err != nil {
			return Result[server.State]{}, "", err
		}
		if sv.Project != "" && st.Project != sv.Project {
			return Result[server.State]{}, "", domain.Invalidf("network %s does not exist", networkID)
		}
	}
	opID := DeriveID(meta.CommandID, "operation")
	meta.CorrelationID = opID
	res, err := a.Servers.Handle(ctx, id, server.AttachInterface{Operation: opID, Network: networkID, At: a.Now().UTC()}, meta)
	if err != nil {
		return res, "", fmt.Errorf("attach an interface to server %s: %w", id, err)
	}
	return res, res.State.Operation, nil
}

// DetachInterface asks the host to unplug server id's NIC of port portID;
// the saga deletes the port afterwards. It returns the server and the
// operation.
func (a *App) DetachInterface(ctx context.Context, id, portID string, meta Meta) (Result[server.State], string, error) {
	opID := DeriveID(meta.CommandID, "operation")
	meta.CorrelationID = opID
	res, err := a.Servers.Handle(ctx, id, server.DetachInterface{Operation: opID, Port: portID, At: a.Now().UTC()}, meta)
	if err != nil {
		return res, "", fmt.Errorf("detach interface %s from server %s: %w", portID, id, err)
	}
	return res, res.State.Operation, nil
}
