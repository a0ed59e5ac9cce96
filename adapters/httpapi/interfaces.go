package httpapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain/server"
)

// registerInterfaces adds the attach and detach of a server's interfaces.
func (a *API) registerInterfaces(hapi huma.API) {
	huma.Register(hapi, huma.Operation{OperationID: "attach-server-interface", Method: http.MethodPost, Path: "/v1/servers/{id}/interfaces",
		Summary: "Attach an interface to a server", Tags: []string{"servers"}, DefaultStatus: http.StatusAccepted,
		Description: "Answers 202 with the server and the operation that makes a port on the network and plugs it into the server " +
			"(live when it runs, and in its definition). Refused with 409 unless the server is ACTIVE or STOPPED with no operation " +
			"in progress and fewer than 8 NICs; 422 for a network that does not exist. The server shows the NIC when the operation succeeds."},
		a.attachInterface)
	huma.Register(hapi, huma.Operation{OperationID: "detach-server-interface", Method: http.MethodDelete, Path: "/v1/servers/{id}/interfaces/{port_id}",
		Summary: "Detach an interface from a server", Tags: []string{"servers"}, DefaultStatus: http.StatusAccepted,
		Description: "Answers 202 with the server and the operation that unplugs the NIC of the port from the server and then deletes " +
			"the port (its address and quota go back). Refused with 409 unless the server is ACTIVE or STOPPED with no operation in " +
			"progress; 404 when the server has no NIC of that port."},
		a.detachInterface)
}

func (a *API) attachInterface(ctx context.Context, in *struct {
	IDParam
	Body api.InterfaceBody
}) (*AcceptedOutput, error) {
	id, err := a.serverID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	if err := a.projectBusy(ctx); err != nil {
		return nil, err
	}
	netID, err := a.networkID(ctx, in.Body.Network)
	if err != nil {
		return nil, unprocessable(err)
	}
	res, opID, err := a.App.AttachInterface(ctx, id, netID, a.meta(ctx, commandID(ctx)))
	return a.accepted(ctx, res, opID, err)
}

func (a *API) detachInterface(ctx context.Context, in *struct {
	IDParam
	PortID string `path:"port_id" maxLength:"64" doc:"The port of the NIC (its port_id in the server's nics)"`
}) (*AcceptedOutput, error) {
	id, err := a.serverID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	if err := a.projectBusy(ctx); err != nil {
		return nil, err
	}
	res, opID, err := a.App.DetachInterface(ctx, id, in.PortID, a.meta(ctx, commandID(ctx)))
	return a.accepted(ctx, res, opID, err)
}

// accepted answers a server operation that began (or why it did not).
func (a *API) accepted(ctx context.Context, res commands.Result[server.State], opID string, err error) (*AcceptedOutput, error) {
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &AcceptedOutput{Written: Written{res.Seq}, Location: "/v1/operations/" + opID,
		Body: api.Accepted{Server: serverView(res.State, res.Version, a.App.Now().UTC()), OperationID: opID}}, nil
}
