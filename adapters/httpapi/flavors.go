package httpapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/keel-cloud/keel/adapters/postgres"
	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/flavor"
)

// FlavorOutput is one flavor.
type FlavorOutput struct {
	Written
	Location string `header:"Location"`
	Body     api.Flavor
}

// IDParam names a resource by UUID or by name.
type IDParam struct {
	ID string `path:"id" maxLength:"255" doc:"UUID or unique name"`
}

// DeletedOutput answers a delete that completes at once.
type DeletedOutput struct {
	Written
}

func (a *API) registerFlavors(hapi huma.API) {
	huma.Register(hapi, huma.Operation{OperationID: "create-flavor", Method: http.MethodPost, Path: "/v1/flavors",
		Summary: "Create a flavor", Description: "Flavor names are unique. Extra specs steer placement: trait:NAME=required|forbidden, aggregate:KEY=VALUE.",
		Tags: []string{"flavors"}, DefaultStatus: http.StatusCreated},
		func(ctx context.Context, in *struct {
			Body api.FlavorBody
		}) (*FlavorOutput, error) {
			if err := domain.CheckName("name", in.Body.Name); err != nil {
				return nil, a.fail(ctx, err)
			}
			cid := commandID(ctx)
			spec := flavor.Spec{Name: in.Body.Name, VCPUs: in.Body.VCPUs, RAMMiB: in.Body.RAMMiB, DiskGiB: in.Body.DiskGiB, ExtraSpecs: in.Body.ExtraSpecs}
			res, err := a.App.CreateFlavor(ctx, spec, a.meta(ctx, cid))
			id, at := string(res.State.ID), res.State.CreatedAt
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			s := res.State.Spec
			out := &FlavorOutput{Written: Written{res.Seq}, Location: "/v1/flavors/" + id,
				Body: api.Flavor{ID: id, Name: s.Name, VCPUs: s.VCPUs, RAMMiB: s.RAMMiB, DiskGiB: s.DiskGiB, ExtraSpecs: nonNil(s.ExtraSpecs), CreatedAt: at}}
			return out, nil
		})

	huma.Register(hapi, huma.Operation{OperationID: "list-flavors", Method: http.MethodGet, Path: "/v1/flavors",
		Summary: "List flavors", Description: "Flavors by name, a page at a time; filter by exact name.",
		Tags: []string{"flavors"}},
		func(ctx context.Context, in *struct {
			ReadAfter
			PageParams
			Name string `query:"name" maxLength:"255" doc:"Only the flavor with this name"`
		}) (*ListOutput[api.Flavor], error) {
			if err := a.waitRead(ctx, in.ReadAfter); err != nil {
				return nil, err
			}
			items, next, err := a.Read.Flavors(ctx, postgres.FlavorFilter{Name: in.Name}, in.page())
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			return pageOut(items, next, flavorOut), nil
		})

	huma.Register(hapi, huma.Operation{OperationID: "get-flavor", Method: http.MethodGet, Path: "/v1/flavors/{id}",
		Summary: "Show a flavor", Description: "One flavor by id or unique name.",
		Tags: []string{"flavors"}},
		func(ctx context.Context, in *struct {
			ReadAfter
			IDParam
		}) (*FlavorOutput, error) {
			if err := a.waitRead(ctx, in.ReadAfter); err != nil {
				return nil, err
			}
			id, err := a.flavorID(ctx, in.ID)
			if err != nil {
				return nil, err
			}
			f, err := a.Read.Flavor(ctx, id)
			if err != nil {
				return nil, a.notFoundOr(ctx, err, "flavor", in.ID)
			}
			return &FlavorOutput{Body: flavorOut(f)}, nil
		})

	huma.Register(hapi, huma.Operation{OperationID: "delete-flavor", Method: http.MethodDelete, Path: "/v1/flavors/{id}",
		Summary: "Delete a flavor", Description: "Servers keep a copy of their flavor, so deleting it changes no server.",
		Tags: []string{"flavors"}, DefaultStatus: http.StatusNoContent},
		func(ctx context.Context, in *IDParam) (*DeletedOutput, error) {
			id, err := a.flavorID(ctx, in.ID)
			if err != nil {
				return nil, err
			}
			res, err := a.App.DeleteFlavor(ctx, id, a.meta(ctx, commandID(ctx)))
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			return &DeletedOutput{Written{res.Seq}}, nil
		})
}

func (a *API) notFoundOr(ctx context.Context, err error, kind, ref string) error {
	if err == postgres.ErrNotFound {
		return notFound(ctx, kind, ref)
	}
	return a.fail(ctx, err)
}

func (a *API) flavorID(ctx context.Context, ref string) (string, error) {
	return a.resolveUnique(ctx, commands.KindFlavor, ref)
}

func ids[T any](items []T, id func(T) string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = id(it)
	}
	return out
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
