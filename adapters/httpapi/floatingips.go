package httpapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/keel-cloud/keel/adapters/postgres"
	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/domain/floatingip"
)

// FloatingIPOutput is one floating IP.
type FloatingIPOutput struct {
	Written
	Location string `header:"Location"`
	Body     api.FloatingIP
}

// FloatingIPParam names a floating IP by its id or its address.
type FloatingIPParam struct {
	ID string `path:"id" maxLength:"64" doc:"UUID, or the floating IP's address"`
}

func (a *API) registerFloatingIPs(hapi huma.API) {
	tags := []string{"floating-ips"}
	path := api.FloatingIPs + "/{id}"
	huma.Register(hapi, huma.Operation{OperationID: "create-floating-ip", Method: http.MethodPost, Path: api.FloatingIPs,
		Summary: "Create a floating IP", Tags: tags, DefaultStatus: http.StatusCreated,
		Description: "An address of an external network's subnets for the caller's project; 409 \"subnet exhausted\" when none is left. Counts against the project's floating_ips quota."},
		a.createFloatingIP)
	huma.Register(hapi, huma.Operation{OperationID: "list-floating-ips", Method: http.MethodGet, Path: api.FloatingIPs,
		Summary: "List floating IPs", Description: "Floating IPs, a page at a time; filter by network, port or address.", Tags: tags}, a.listFloatingIPs)
	huma.Register(hapi, huma.Operation{OperationID: "get-floating-ip", Method: http.MethodGet, Path: path,
		Summary: "Show a floating IP", Description: "One floating IP by id or address.", Tags: tags}, a.getFloatingIP)
	huma.Register(hapi, huma.Operation{OperationID: "delete-floating-ip", Method: http.MethodDelete, Path: path,
		Summary: "Delete a floating IP", Description: "Disassociated first; its address goes back to its subnet and its quota to its project.", Tags: tags, DefaultStatus: http.StatusNoContent},
		a.deleteFloatingIP)
	huma.Register(hapi, huma.Operation{OperationID: "associate-floating-ip", Method: http.MethodPut, Path: path + "/association",
		Summary: "Point a floating IP at a port", Tags: tags,
		Description: "The port must have a fixed IP on a subnet that a router with its gateway on the floating IP's network has an interface on: that router translates it (dnat_and_snat). " +
			"409 when no router reaches the port, or while the floating IP points at another port. Deleting the port disassociates it."},
		a.associateFloatingIP)
	huma.Register(hapi, huma.Operation{OperationID: "disassociate-floating-ip", Method: http.MethodDelete, Path: path + "/association",
		Summary: "Point a floating IP nowhere", Description: "Its router stops translating it.", Tags: tags, DefaultStatus: http.StatusNoContent},
		a.disassociateFloatingIP)
}

func (a *API) createFloatingIP(ctx context.Context, in *struct{ Body api.FloatingIPBody }) (*FloatingIPOutput, error) {
	netID, err := a.externalNetworkID(ctx, in.Body.Network)
	if err != nil {
		return nil, unprocessable(err)
	}
	res, err := a.App.CreateFloatingIP(ctx, netID, a.meta(ctx, commandID(ctx)))
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	id := string(res.State.ID)
	return &FloatingIPOutput{Written: a.written(ctx, res.Seq), Location: api.FloatingIPs + "/" + id, Body: floatingIPView(res.State)}, nil
}

func (a *API) listFloatingIPs(ctx context.Context, in *struct {
	ReadAfter
	PageParams
	AllProjects
	Network string `query:"network" maxLength:"255" doc:"Only the floating IPs of this external network (id or name)"`
	Port    string `query:"port" maxLength:"255" doc:"Only the floating IP pointing at this port (id or name)"`
	IP      string `query:"ip" maxLength:"64" doc:"Only the floating IP with this address"`
}) (*ListOutput[api.FloatingIP], error) {
	scope, err := a.readScope(ctx, in.ReadAfter, in.AllProjects)
	if err != nil {
		return nil, err
	}
	f := postgres.FloatingIPFilter{Scope: scope, IP: in.IP}
	if in.Network != "" {
		if f.Network, err = a.externalNetworkID(ctx, in.Network); err != nil {
			return nil, err
		}
	}
	if in.Port != "" {
		if f.Port, err = a.portID(ctx, in.Port); err != nil {
			return nil, err
		}
	}
	items, next, err := a.Read.FloatingIPs(ctx, f, in.page())
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return pageOut(items, next, floatingIPOut), nil
}

func (a *API) getFloatingIP(ctx context.Context, in *struct {
	ReadAfter
	FloatingIPParam
}) (*FloatingIPOutput, error) {
	if err := a.waitRead(ctx, in.ReadAfter); err != nil {
		return nil, err
	}
	id, err := a.floatingIPID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	f, err := a.Read.FloatingIP(ctx, id)
	if err != nil {
		return nil, a.notFoundOr(ctx, err, "floating IP", in.ID)
	}
	if !visible(ctx, &f.ProjectID, false) {
		return nil, notFound(ctx, "floating IP", in.ID)
	}
	return &FloatingIPOutput{Body: floatingIPOut(f)}, nil
}

func (a *API) deleteFloatingIP(ctx context.Context, in *FloatingIPParam) (*DeletedOutput, error) {
	id, err := a.floatingIPID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	res, err := a.App.DeleteFloatingIP(ctx, id, a.meta(ctx, commandID(ctx)))
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &DeletedOutput{a.written(ctx, res.Seq)}, nil
}

func (a *API) associateFloatingIP(ctx context.Context, in *struct {
	FloatingIPParam
	Body api.FloatingIPAssociationBody
}) (*FloatingIPOutput, error) {
	id, err := a.floatingIPID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	portID, err := a.portID(ctx, in.Body.Port)
	if err != nil {
		return nil, unprocessable(err)
	}
	res, err := a.App.AssociateFloatingIP(ctx, id, portID, a.meta(ctx, commandID(ctx)))
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &FloatingIPOutput{Written: a.written(ctx, res.Seq), Body: floatingIPView(res.State)}, nil
}

func (a *API) disassociateFloatingIP(ctx context.Context, in *FloatingIPParam) (*DeletedOutput, error) {
	id, err := a.floatingIPID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	res, err := a.App.DisassociateFloatingIP(ctx, id, a.meta(ctx, commandID(ctx)))
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &DeletedOutput{a.written(ctx, res.Seq)}, nil
}

// floatingIPID resolves a floating IP by id, or by its address among the
// caller's project's.
func (a *API) floatingIPID(ctx context.Context, ref string) (string, error) {
	if u, err := uuid.Parse(ref); err == nil {
		return u.String(), nil
	}
	return a.resolve(ctx, "floating IP", ref, func(ip string) ([]string, error) {
		items, _, err := a.Read.FloatingIPs(ctx, postgres.FloatingIPFilter{Scope: postgres.Scope{Project: ownProject(ctx)}, IP: ip}, postgres.Page{Limit: 2})
		return ids(items, func(f postgres.FloatingIP) string { return f.ID }), err
	})
}

// disassociateFromPort disassociates the floating IPs the read model shows
// pointing at a port just deleted (as Neutron does); what it does not show
// yet is the floating IP sweep's.
func (a *API) disassociateFromPort(ctx context.Context, portID string) {
	items, _, err := a.Read.FloatingIPs(ctx, postgres.FloatingIPFilter{Scope: postgres.Scope{All: true}, Port: portID}, postgres.Page{Limit: 10})
	if err != nil || len(items) == 0 {
		return
	}
	fips := ids(items, func(f postgres.FloatingIP) string { return f.ID })
	_ = a.App.DisassociatePortFloatingIPs(context.WithoutCancel(ctx), portID, fips, a.meta(ctx, commandID(ctx)+"/floating-ips"))
}

func floatingIPOut(f postgres.FloatingIP) api.FloatingIP {
	return api.FloatingIP{ID: f.ID, ProjectID: f.ProjectID, NetworkID: f.NetworkID, SubnetID: f.SubnetID, IP: f.IP, PortID: f.PortID,
		FixedIP: f.FixedIP, RouterID: f.RouterID, CreatedAt: f.CreatedAt}
}

func floatingIPView(s floatingip.State) api.FloatingIP {
	out := api.FloatingIP{ID: string(s.ID), ProjectID: s.Project, NetworkID: s.Network, SubnetID: s.Subnet, IP: s.IP, CreatedAt: s.CreatedAt}
	if x := s.Assoc; x != nil {
		out.PortID, out.FixedIP, out.RouterID = optional(x.Port), optional(x.FixedIP), optional(x.Router)
	}
	return out
}
