package httpapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain/servergroup"
)

// GroupBody is a server group to create.
type GroupBody struct {
	Name       string `json:"name" minLength:"1" maxLength:"255"`
	Policy     string `json:"policy" enum:"affinity,anti-affinity,soft-affinity,soft-anti-affinity" doc:"Hard policies refuse a placement that breaks them; soft ones only steer it"`
	MaxPerHost int    `json:"max_per_host,omitempty" minimum:"0" maximum:"100000" doc:"At most this many members on one host (0: no limit; hard anti-affinity means 1)"`
}

// GroupOutput is one server group.
type GroupOutput struct {
	Written
	Location string `header:"Location"`
	Body     api.ServerGroup
}

func (a *API) registerGroups(hapi huma.API) {
	huma.Register(hapi, huma.Operation{OperationID: "create-server-group", Method: http.MethodPost, Path: "/v1/server-groups",
		Summary: "Create a server group", Description: "The policy (affinity, anti-affinity, or their soft forms) applies to servers created with this group as their server_group.",
		Tags: []string{"server-groups"}, DefaultStatus: http.StatusCreated},
		func(ctx context.Context, in *struct{ Body api.GroupBody }) (*GroupOutput, error) {
			spec := servergroup.Spec{Project: ownProject(ctx), Name: in.Body.Name, Policy: in.Body.Policy, MaxPerHost: in.Body.MaxPerHost}
			res, err := a.App.CreateGroup(ctx, spec, a.meta(ctx, commandID(ctx)))
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			id, at := res.State.ID, a.App.Now().UTC()
			s := res.State.Spec
			return &GroupOutput{Written: Written{res.Seq}, Location: "/v1/server-groups/" + id,
				Body: api.ServerGroup{ID: id, Name: s.Name, Policy: s.Policy, MaxPerHost: s.MaxPerHost, Members: []api.GroupMember{}, CreatedAt: at, ProjectID: &s.Project}}, nil
		})

	huma.Register(hapi, huma.Operation{OperationID: "list-server-groups", Method: http.MethodGet, Path: "/v1/server-groups",
		Summary: "List server groups", Description: "Server groups by name, a page at a time.",
		Tags: []string{"server-groups"}},
		func(ctx context.Context, in *struct {
			ReadAfter
			PageParams
			AllProjects
			Name string `query:"name" maxLength:"255"`
		}) (*ListOutput[api.ServerGroup], error) {
			if err := a.waitRead(ctx, in.ReadAfter); err != nil {
				return nil, err
			}
			scope, err := a.listScope(ctx, in.AllProjects)
			if err != nil {
				return nil, err
			}
			items, next, err := a.Read.ServerGroups(ctx, scope, in.Name, in.page())
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			return pageOut(items, next, groupOut), nil
		})

	huma.Register(hapi, huma.Operation{OperationID: "get-server-group", Method: http.MethodGet, Path: "/v1/server-groups/{id}",
		Summary: "Show a server group and where its members are", Description: "One server group by id or name, with each member and the host it is on.",
		Tags: []string{"server-groups"}},
		func(ctx context.Context, in *struct {
			ReadAfter
			IDParam
		}) (*GroupOutput, error) {
			if err := a.waitRead(ctx, in.ReadAfter); err != nil {
				return nil, err
			}
			id, err := a.groupID(ctx, in.ID)
			if err != nil {
				return nil, err
			}
			g, err := a.Read.ServerGroup(ctx, id)
			if err != nil {
				return nil, a.notFoundOr(ctx, err, "server group", in.ID)
			}
			if !visible(ctx, g.ProjectID, false) {
				return nil, notFound(ctx, "server group", in.ID)
			}
			return &GroupOutput{Body: groupOut(g)}, nil
		})

	huma.Register(hapi, huma.Operation{OperationID: "delete-server-group", Method: http.MethodDelete, Path: "/v1/server-groups/{id}",
		Summary: "Delete an empty server group", Description: "Refused with 409 while the group has members.",
		Tags: []string{"server-groups"}, DefaultStatus: http.StatusNoContent},
		func(ctx context.Context, in *IDParam) (*DeletedOutput, error) {
			id, err := a.groupID(ctx, in.ID)
			if err != nil {
				return nil, err
			}
			res, err := a.App.DeleteGroup(ctx, id, a.meta(ctx, commandID(ctx)))
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			return &DeletedOutput{Written{res.Seq}}, nil
		})
}

func (a *API) groupID(ctx context.Context, ref string) (string, error) {
	return a.resolveUnique(ctx, commands.KindGroup, ref)
}
