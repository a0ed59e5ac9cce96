package httpapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/keel-cloud/keel/adapters/postgres"
	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/commands"
)

// PortOutput is one port.
type PortOutput struct {
	Written
	Location string `header:"Location"`
	Body     api.Port
}

func (a *API) registerPorts(hapi huma.API) {
	tags := []string{"ports"}
	huma.Register(hapi, huma.Operation{OperationID: "create-port", Method: http.MethodPost, Path: api.Ports,
		Summary: "Create a port", Tags: tags, DefaultStatus: http.StatusCreated,
		Description: "A port on a network of the caller's project, with a MAC (fa:16:3e:…) and an address from a subnet: the one asked for, or the next free one. " +
			"409 \"subnet exhausted\" when the subnet has no address left. Counts against the project's ports quota. Without security groups it joins the project's default group."},
		a.createPort)
	huma.Register(hapi, huma.Operation{OperationID: "list-ports", Method: http.MethodGet, Path: api.Ports,
		Summary: "List ports", Description: "Ports, a page at a time; filter by name, network or security group.", Tags: tags}, a.listPorts)
	huma.Register(hapi, huma.Operation{OperationID: "get-port", Method: http.MethodGet, Path: api.Ports + "/{id}",
		Summary: "Show a port", Description: "One port by id or name.", Tags: tags}, a.getPort)
	huma.Register(hapi, huma.Operation{OperationID: "set-port-security-groups", Method: http.MethodPut, Path: api.Ports + "/{id}/security-groups",
		Summary: "Replace a port's security groups", Tags: tags,
		Description: "The port (a server's NIC too) is in exactly these groups of its project from now on; the network adapter changes its memberships in OVN. " +
			"422 when port security is off (groups would not apply) or a group is unknown."},
		a.setPortSecurityGroups)
	huma.Register(hapi, huma.Operation{OperationID: "delete-port", Method: http.MethodDelete, Path: api.Ports + "/{id}",
		Summary: "Delete a port", Description: "Its address goes back to its subnet and its quota to its project.", Tags: tags, DefaultStatus: http.StatusNoContent},
		a.deletePort)
}

func (a *API) createPort(ctx context.Context, in *struct{ Body api.PortBody }) (*PortOutput, error) {
	b := in.Body
	req := commands.CreatePortRequest{Name: b.Name, IP: b.IP, PortSecurity: b.PortSecurity}
	var err error
	if req.Network, err = a.networkID(ctx, b.Network); err != nil {
		return nil, unprocessable(err)
	}
	if b.Subnet != "" {
		if req.Subnet, err = a.subnetID(ctx, b.Subnet); err != nil {
			return nil, unprocessable(err)
		}
	}
	for _, g := range b.SecurityGroups {
		id, err := a.securityGroupID(ctx, g)
		if err != nil {
			return nil, unprocessable(err)
		}
		req.SecurityGroups = append(req.SecurityGroups, id)
	}
	res, err := a.App.CreatePort(ctx, req, a.meta(ctx, commandID(ctx)))
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	id := string(res.State.ID)
	return &PortOutput{Written: a.written(ctx, res.Seq), Location: api.Ports + "/" + id, Body: portView(res.State)}, nil
}

func (a *API) setPortSecurityGroups(ctx context.Context, in *struct {
	RefParam
	Body api.PortSecurityGroupsBody
}) (*PortOutput, error) {
	id, err := a.portID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	groups := []string{}
	for _, g := range in.Body.SecurityGroups {
		gid, err := a.securityGroupID(ctx, g)
		if err != nil {
			return nil, unprocessable(err)
		}
		groups = append(groups, gid)
	}
	res, err := a.App.SetPortSecurityGroups(ctx, id, groups, a.meta(ctx, commandID(ctx)))
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &PortOutput{Written: a.written(ctx, res.Seq), Body: portView(res.State)}, nil
}

func (a *API) listPorts(ctx context.Context, in *struct {
	ReadAfter
	PageParams
	AllProjects
	Name          string `query:"name" maxLength:"255" doc:"Only ports with this name"`
	Network       string `query:"network" maxLength:"255" doc:"Only the ports of this network (id or name)"`
	SecurityGroup string `query:"security_group" maxLength:"255" doc:"Only the ports in this security group (id or name)"`
}) (*ListOutput[api.Port], error) {
	scope, err := a.readScope(ctx, in.ReadAfter, in.AllProjects)
	if err != nil {
		return nil, err
	}
	f := postgres.PortFilter{Scope: scope, Name: in.Name}
	if in.Network != "" {
		if f.Network, err = a.networkID(ctx, in.Network); err != nil {
			return nil, err
		}
	}
	if in.SecurityGroup != "" {
		if f.SecurityGroup, err = a.securityGroupID(ctx, in.SecurityGroup); err != nil {
			return nil, err
		}
	}
	items, next, err := a.Read.Ports(ctx, f, in.page())
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return pageOut(items, next, portOut), nil
}

func (a *API) getPort(ctx context.Context, in *struct {
	ReadAfter
	RefParam
}) (*PortOutput, error) {
	if err := a.waitRead(ctx, in.ReadAfter); err != nil {
		return nil, err
	}
	id, err := a.portID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	p, err := a.Read.Port(ctx, id)
	if err != nil {
		return nil, a.notFoundOr(ctx, err, "port", in.ID)
	}
	if !visible(ctx, &p.ProjectID, false) {
		return nil, notFound(ctx, "port", in.ID)
	}
	return &PortOutput{Body: portOut(p)}, nil
}

func (a *API) deletePort(ctx context.Context, in *RefParam) (*DeletedOutput, error) {
	id, err := a.portID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	res, err := a.App.DeletePort(ctx, id, a.meta(ctx, commandID(ctx)))
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	a.disassociateFromPort(ctx, id)
	return &DeletedOutput{a.written(ctx, res.Seq)}, nil
}

func (a *API) portID(ctx context.Context, ref string) (string, error) {
	return a.resolve(ctx, "port", ref, func(name string) ([]string, error) {
		items, _, err := a.Read.Ports(ctx, postgres.PortFilter{Scope: postgres.Scope{Project: ownProject(ctx)}, Name: name}, postgres.Page{Limit: 2})
		return ids(items, func(p postgres.Port) string { return p.ID }), err
	})
}
