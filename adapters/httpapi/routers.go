package httpapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/keel-cloud/keel/adapters/postgres"
	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain/router"
)

// RouterOutput is one router.
type RouterOutput struct {
	Written
	Location string `header:"Location"`
	Body     api.Router
}

// RouterInterfaceParams name an interface of a router by its subnet.
type RouterInterfaceParams struct {
	RefParam
	Subnet string `path:"subnet_id" maxLength:"255" doc:"The interface's subnet (id or name)"`
}

func (a *API) registerRouters(hapi huma.API) {
	tags := []string{"routers"}
	path := api.Routers + "/{id}"
	huma.Register(hapi, huma.Operation{OperationID: "create-router", Method: http.MethodPost, Path: api.Routers,
		Summary: "Create a router", Tags: tags, DefaultStatus: http.StatusCreated,
		Description: "A router of the caller's project, without interfaces or gateway. Counts against the project's routers quota (its ports count against no port quota)."},
		a.createRouter)
	huma.Register(hapi, huma.Operation{OperationID: "list-routers", Method: http.MethodGet, Path: api.Routers,
		Summary: "List routers", Description: "Routers with their gateway and interfaces, a page at a time; filter by exact name.", Tags: tags}, a.listRouters)
	huma.Register(hapi, huma.Operation{OperationID: "get-router", Method: http.MethodGet, Path: path,
		Summary: "Show a router", Description: "One router by id or name, with its gateway and interfaces.", Tags: tags}, a.getRouter)
	huma.Register(hapi, huma.Operation{OperationID: "delete-router", Method: http.MethodDelete, Path: path,
		Summary: "Delete a router", Description: "409 while it has interfaces: remove them first. Its gateway goes with it.", Tags: tags, DefaultStatus: http.StatusNoContent},
		a.deleteRouter)
	huma.Register(hapi, huma.Operation{OperationID: "add-router-interface", Method: http.MethodPost, Path: path + "/interfaces",
		Summary: "Connect a router to a subnet", Tags: tags,
		Description: "The router gets a port on the subnet with the subnet's gateway address (owner network:router_interface). " +
			"409 when the subnet has no gateway, when another router already has an interface on it, or when it overlaps a subnet the router connects."},
		a.addRouterInterface)
	huma.Register(hapi, huma.Operation{OperationID: "remove-router-interface", Method: http.MethodDelete, Path: path + "/interfaces/{subnet_id}",
		Summary: "Disconnect a router from a subnet", Tags: tags, DefaultStatus: http.StatusNoContent,
		Description: "The interface's port is deleted and the gateway address goes back to the subnet. 409 while a floating IP reaches a port through it."},
		a.removeRouterInterface)
	huma.Register(hapi, huma.Operation{OperationID: "set-router-gateway", Method: http.MethodPut, Path: path + "/gateway",
		Summary: "Set a router's gateway", Tags: tags,
		Description: "A port on an external network with an address of its subnet (owner network:router_gateway); SNAT is on unless snat is false. " +
			"On the network the router has its gateway on, this only changes SNAT; 409 for another network until the gateway is cleared."},
		a.setRouterGateway)
	huma.Register(hapi, huma.Operation{OperationID: "clear-router-gateway", Method: http.MethodDelete, Path: path + "/gateway",
		Summary: "Clear a router's gateway", Tags: tags, DefaultStatus: http.StatusNoContent,
		Description: "The gateway's port is deleted and its address goes back. 409 while floating IPs are translated through it."},
		a.clearRouterGateway)
}

func (a *API) createRouter(ctx context.Context, in *struct{ Body api.RouterBody }) (*RouterOutput, error) {
	res, err := a.App.CreateRouter(ctx, in.Body.Name, a.meta(ctx, commandID(ctx)))
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	id := string(res.State.ID)
	return &RouterOutput{Written: a.written(ctx, res.Seq), Location: api.Routers + "/" + id, Body: routerView(res.State)}, nil
}

func (a *API) listRouters(ctx context.Context, in *struct {
	ReadAfter
	PageParams
	AllProjects
	Name string `query:"name" maxLength:"255" doc:"Only routers with this name"`
}) (*ListOutput[api.Router], error) {
	scope, err := a.readScope(ctx, in.ReadAfter, in.AllProjects)
	if err != nil {
		return nil, err
	}
	items, next, err := a.Read.Routers(ctx, postgres.RouterFilter{Scope: scope, Name: in.Name}, in.page())
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return pageOut(items, next, routerOut), nil
}

func (a *API) getRouter(ctx context.Context, in *struct {
	ReadAfter
	RefParam
}) (*RouterOutput, error) {
	if err := a.waitRead(ctx, in.ReadAfter); err != nil {
		return nil, err
	}
	id, err := a.routerID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	r, err := a.Read.Router(ctx, id)
	if err != nil {
		return nil, a.notFoundOr(ctx, err, "router", in.ID)
	}
	if !visible(ctx, &r.ProjectID, false) {
		return nil, notFound(ctx, "router", in.ID)
	}
	return &RouterOutput{Body: routerOut(r)}, nil
}

func (a *API) deleteRouter(ctx context.Context, in *RefParam) (*DeletedOutput, error) {
	id, err := a.routerID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	res, err := a.App.DeleteRouter(ctx, id, a.meta(ctx, commandID(ctx)))
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &DeletedOutput{a.written(ctx, res.Seq)}, nil
}

func (a *API) addRouterInterface(ctx context.Context, in *struct {
	RefParam
	Body api.RouterInterfaceBody
}) (*RouterOutput, error) {
	id, err := a.routerID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	subnetID, err := a.subnetID(ctx, in.Body.Subnet)
	if err != nil {
		return nil, unprocessable(err)
	}
	res, err := a.App.AddRouterInterface(ctx, id, subnetID, a.meta(ctx, commandID(ctx)))
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &RouterOutput{Written: a.written(ctx, res.Seq), Body: routerView(res.State)}, nil
}

func (a *API) removeRouterInterface(ctx context.Context, in *RouterInterfaceParams) (*DeletedOutput, error) {
	id, err := a.routerID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	subnetID, err := a.subnetID(ctx, in.Subnet)
	if err != nil {
		return nil, err
	}
	res, err := a.App.RemoveRouterInterface(ctx, id, subnetID, a.meta(ctx, commandID(ctx)))
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &DeletedOutput{a.written(ctx, res.Seq)}, nil
}

func (a *API) setRouterGateway(ctx context.Context, in *struct {
	RefParam
	Body api.RouterGatewayBody
}) (*RouterOutput, error) {
	id, err := a.routerID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	netID, err := a.externalNetworkID(ctx, in.Body.Network)
	if err != nil {
		return nil, unprocessable(err)
	}
	res, err := a.App.SetRouterGateway(ctx, id, commands.SetRouterGatewayRequest{Network: netID, SNAT: in.Body.SNAT}, a.meta(ctx, commandID(ctx)))
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &RouterOutput{Written: a.written(ctx, res.Seq), Body: routerView(res.State)}, nil
}

func (a *API) clearRouterGateway(ctx context.Context, in *RefParam) (*DeletedOutput, error) {
	id, err := a.routerID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	res, err := a.App.ClearRouterGateway(ctx, id, a.meta(ctx, commandID(ctx)))
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &DeletedOutput{a.written(ctx, res.Seq)}, nil
}

func (a *API) routerID(ctx context.Context, ref string) (string, error) {
	return a.resolve(ctx, "router", ref, func(name string) ([]string, error) {
		items, _, err := a.Read.Routers(ctx, postgres.RouterFilter{Scope: postgres.Scope{Project: ownProject(ctx)}, Name: name}, postgres.Page{Limit: 2})
		return ids(items, func(r postgres.Router) string { return r.ID }), err
	})
}

// externalNetworkID resolves an external network, of any project: every
// project may put its routers' gateways and take floating IPs there.
func (a *API) externalNetworkID(ctx context.Context, ref string) (string, error) {
	return a.resolve(ctx, "external network", ref, func(name string) ([]string, error) {
		return a.Read.ExternalNetworks(ctx, name, 2)
	})
}

func routerOut(r postgres.Router) api.Router {
	out := api.Router{ID: r.ID, ProjectID: r.ProjectID, Name: r.Name, Interfaces: all(r.Interfaces, routerInterfaceOut), CreatedAt: r.CreatedAt}
	if r.Gateway != nil {
		out.Gateway = routerGatewayOut(*r.Gateway)
	}
	return out
}

func routerView(s router.State) api.Router {
	out := api.Router{ID: string(s.ID), ProjectID: s.Project, Name: s.Name, Interfaces: all(s.Interfaces, routerInterfaceOut), CreatedAt: s.CreatedAt}
	if s.Gateway != nil {
		out.Gateway = routerGatewayOut(*s.Gateway)
	}
	return out
}

func routerGatewayOut(g router.Gateway) *api.RouterGateway {
	return &api.RouterGateway{NetworkID: g.Network, SubnetID: g.Subnet, PortID: g.Port, IP: g.IP, SNAT: g.SNAT}
}

func routerInterfaceOut(i router.Interface) api.RouterInterface {
	return api.RouterInterface{SubnetID: i.Subnet, CIDR: i.CIDR, PortID: i.Port, IP: i.IP}
}
