package httpapi

import (
	"context"
	"fmt"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/keel-cloud/keel/adapters/postgres"
	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain/network"
	"github.com/keel-cloud/keel/domain/subnet"
)

// NetworkOutput is one network.
type NetworkOutput struct {
	Written
	Location string `header:"Location"`
	Body     api.Network
}

// SubnetOutput is one subnet.
type SubnetOutput struct {
	Written
	Location string `header:"Location"`
	Body     api.Subnet
}

// RefParam is a path parameter that is an id or a name that need not be
// unique (a 409 asks for the id when several match).
type RefParam struct {
	ID string `path:"id" maxLength:"255" doc:"UUID, or a name unique in the caller's project"`
}

func (a *API) registerNetworks(hapi huma.API) {
	tags := []string{"networks"}
	huma.Register(hapi, huma.Operation{OperationID: "create-network", Method: http.MethodPost, Path: api.Networks,
		Summary: "Create a network", Tags: tags, DefaultStatus: http.StatusCreated,
		Description: "A network of the caller's project; counts against its networks quota. The project's default security group is made with its first network."},
		a.createNetwork)
	huma.Register(hapi, huma.Operation{OperationID: "list-networks", Method: http.MethodGet, Path: api.Networks,
		Summary: "List networks", Description: "Networks, a page at a time; filter by exact name.", Tags: tags}, a.listNetworks)
	huma.Register(hapi, huma.Operation{OperationID: "get-network", Method: http.MethodGet, Path: api.Networks + "/{id}",
		Summary: "Show a network", Description: "One network by id or name.", Tags: tags}, a.getNetwork)
	huma.Register(hapi, huma.Operation{OperationID: "delete-network", Method: http.MethodDelete, Path: api.Networks + "/{id}",
		Summary: "Delete a network", Description: "409 while it has ports or subnets: delete those first.", Tags: tags, DefaultStatus: http.StatusNoContent},
		a.deleteNetwork)
	tags = []string{"subnets"}
	huma.Register(hapi, huma.Operation{OperationID: "create-subnet", Method: http.MethodPost, Path: api.Subnets,
		Summary: "Create a subnet", Tags: tags, DefaultStatus: http.StatusCreated,
		Description: "An IPv4 range on a network of the caller's project, with its gateway, DHCP, DNS servers, allocation pools and host routes. Subnets of one network must not overlap; two networks may use the same CIDR."},
		a.createSubnet)
	huma.Register(hapi, huma.Operation{OperationID: "list-subnets", Method: http.MethodGet, Path: api.Subnets,
		Summary: "List subnets", Description: "Subnets, a page at a time; filter by name or network.", Tags: tags}, a.listSubnets)
	huma.Register(hapi, huma.Operation{OperationID: "get-subnet", Method: http.MethodGet, Path: api.Subnets + "/{id}",
		Summary: "Show a subnet", Description: "One subnet by id or name, with how many addresses it has handed out.", Tags: tags}, a.getSubnet)
	huma.Register(hapi, huma.Operation{OperationID: "delete-subnet", Method: http.MethodDelete, Path: api.Subnets + "/{id}",
		Summary: "Delete a subnet", Description: "409 while ports hold its addresses.", Tags: tags, DefaultStatus: http.StatusNoContent},
		a.deleteSubnet)
}

func (a *API) createNetwork(ctx context.Context, in *struct{ Body api.NetworkBody }) (*NetworkOutput, error) {
	b := in.Body
	if p, _ := principalFrom(ctx); !p.CloudAdmin && (b.External || (b.Kind != "" && b.Kind != string(network.Overlay))) {
		// A provider network reaches a physical network of the cloud's: who
		// may make one is the cloud's choice, not a project's.
		return nil, problem(ctx, http.StatusForbidden, "provider (vlan, flat) and external networks are made by cloud admins; a project makes overlay networks")
	}
	res, err := a.App.CreateNetwork(ctx, commands.CreateNetworkRequest{Name: b.Name, Kind: network.Kind(b.Kind), PhysicalNetwork: b.PhysicalNetwork,
		VLAN: b.VLAN, External: b.External, MTU: b.MTU}, a.meta(ctx, commandID(ctx)))
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	id := string(res.State.ID)
	return &NetworkOutput{Written: a.written(ctx, res.Seq), Location: api.Networks + "/" + id, Body: networkView(res.State)}, nil
}

func (a *API) listNetworks(ctx context.Context, in *struct {
	ReadAfter
	PageParams
	AllProjects
	Name string `query:"name" maxLength:"255" doc:"Only networks with this name"`
}) (*ListOutput[api.Network], error) {
	scope, err := a.readScope(ctx, in.ReadAfter, in.AllProjects)
	if err != nil {
		return nil, err
	}
	items, next, err := a.Read.Networks(ctx, postgres.NetworkFilter{Scope: scope, Name: in.Name}, in.page())
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return pageOut(items, next, networkOut), nil
}

func (a *API) getNetwork(ctx context.Context, in *struct {
	ReadAfter
	RefParam
}) (*NetworkOutput, error) {
	if err := a.waitRead(ctx, in.ReadAfter); err != nil {
		return nil, err
	}
	id, err := a.networkID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	n, err := a.Read.Network(ctx, id)
	if err != nil {
		return nil, a.notFoundOr(ctx, err, "network", in.ID)
	}
	if !visible(ctx, &n.ProjectID, false) {
		return nil, notFound(ctx, "network", in.ID)
	}
	return &NetworkOutput{Body: networkOut(n)}, nil
}

// deleteNetwork refuses a network that still has ports with a message that
// says so; the network aggregate itself refuses one with subnets, which a
// network with ports has (a port needs an address).
func (a *API) deleteNetwork(ctx context.Context, in *RefParam) (*DeletedOutput, error) {
	id, err := a.networkID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	if err := a.waitMinSeq(ctx); err != nil { // the ports it counts include the caller's writes
		return nil, err
	}
	if n, err := a.Read.Network(ctx, id); err == nil && !visible(ctx, &n.ProjectID, false) {
		return nil, notFound(ctx, "network", in.ID) // before saying anything of its ports
	}
	if n, err := a.Read.CountPorts(ctx, postgres.PortFilter{Network: id}); err != nil {
		return nil, a.fail(ctx, err)
	} else if n > 0 {
		markVolatile(ctx)
		return nil, problem(ctx, http.StatusConflict, fmt.Sprintf("network %s still has %d port(s); delete them first", in.ID, n))
	}
	res, err := a.App.DeleteNetwork(ctx, id, a.meta(ctx, commandID(ctx)))
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &DeletedOutput{a.written(ctx, res.Seq)}, nil
}

func (a *API) createSubnet(ctx context.Context, in *struct{ Body api.SubnetBody }) (*SubnetOutput, error) {
	b := in.Body
	netID, err := a.networkID(ctx, b.Network)
	if err != nil {
		return nil, unprocessable(err)
	}
	req := commands.CreateSubnetRequest{Network: netID, Name: b.Name, CIDR: b.CIDR, Gateway: b.Gateway, DHCP: b.DHCP, DNS: b.DNS}
	for _, p := range b.Pools {
		req.Pools = append(req.Pools, subnet.Pool{Start: p.Start, End: p.End})
	}
	for _, r := range b.Routes {
		req.Routes = append(req.Routes, subnet.Route{Destination: r.Destination, Nexthop: r.Nexthop})
	}
	res, err := a.App.CreateSubnet(ctx, req, a.meta(ctx, commandID(ctx)))
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	id := string(res.State.ID)
	return &SubnetOutput{Written: a.written(ctx, res.Seq), Location: api.Subnets + "/" + id, Body: subnetView(res.State)}, nil
}

func (a *API) listSubnets(ctx context.Context, in *struct {
	ReadAfter
	PageParams
	AllProjects
	Name    string `query:"name" maxLength:"255" doc:"Only subnets with this name"`
	Network string `query:"network" maxLength:"255" doc:"Only the subnets of this network (id or name)"`
}) (*ListOutput[api.Subnet], error) {
	scope, err := a.readScope(ctx, in.ReadAfter, in.AllProjects)
	if err != nil {
		return nil, err
	}
	f := postgres.SubnetFilter{Scope: scope, Name: in.Name}
	if in.Network != "" {
		if f.Network, err = a.networkID(ctx, in.Network); err != nil {
			return nil, err
		}
	}
	items, next, err := a.Read.Subnets(ctx, f, in.page())
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return pageOut(items, next, subnetOut), nil
}

func (a *API) getSubnet(ctx context.Context, in *struct {
	ReadAfter
	RefParam
}) (*SubnetOutput, error) {
	if err := a.waitRead(ctx, in.ReadAfter); err != nil {
		return nil, err
	}
	id, err := a.subnetID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	s, err := a.Read.Subnet(ctx, id)
	if err != nil {
		return nil, a.notFoundOr(ctx, err, "subnet", in.ID)
	}
	if !visible(ctx, &s.ProjectID, false) {
		return nil, notFound(ctx, "subnet", in.ID)
	}
	return &SubnetOutput{Body: subnetOut(s)}, nil
}

func (a *API) deleteSubnet(ctx context.Context, in *RefParam) (*DeletedOutput, error) {
	id, err := a.subnetID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	res, err := a.App.DeleteSubnet(ctx, id, a.meta(ctx, commandID(ctx)))
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &DeletedOutput{a.written(ctx, res.Seq)}, nil
}

// readScope waits for the read a list asks for and says whose rows it
// lists.
func (a *API) readScope(ctx context.Context, r ReadAfter, all AllProjects) (postgres.Scope, error) {
	if err := a.waitRead(ctx, r); err != nil {
		return postgres.Scope{}, err
	}
	return a.listScope(ctx, all)
}

func (a *API) networkID(ctx context.Context, ref string) (string, error) {
	return a.resolve(ctx, "network", ref, func(name string) ([]string, error) {
		items, _, err := a.Read.Networks(ctx, postgres.NetworkFilter{Scope: postgres.Scope{Project: ownProject(ctx)}, Name: name}, postgres.Page{Limit: 2})
		return ids(items, func(n postgres.Network) string { return n.ID }), err
	})
}

func (a *API) subnetID(ctx context.Context, ref string) (string, error) {
	return a.resolve(ctx, "subnet", ref, func(name string) ([]string, error) {
		items, _, err := a.Read.Subnets(ctx, postgres.SubnetFilter{Scope: postgres.Scope{Project: ownProject(ctx)}, Name: name}, postgres.Page{Limit: 2})
		return ids(items, func(s postgres.Subnet) string { return s.ID }), err
	})
}
