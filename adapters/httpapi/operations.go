package httpapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/keel-cloud/keel/adapters/postgres"
	"github.com/keel-cloud/keel/api"
)

// OperationOutput is one operation with its steps.
type OperationOutput struct {
	Body api.Operation
}

// UUIDParam names a resource by UUID only.
type UUIDParam struct {
	ID string `path:"id" format:"uuid" doc:"UUID"`
}

func (a *API) registerOperations(hapi huma.API) {
	huma.Register(hapi, huma.Operation{OperationID: "get-operation", Method: http.MethodGet, Path: "/v1/operations/{id}",
		Summary: "Show an operation", Tags: []string{"operations"},
		Description: "Kind, status (pending, running, compensating, succeeded, failed), steps with their timings and deadlines, and the error in the user's words; for administrators, the detail behind it (a host's own message), on the operation and on its steps."},
		func(ctx context.Context, in *struct {
			ReadAfter
			UUIDParam
		}) (*OperationOutput, error) {
			if err := a.waitRead(ctx, in.ReadAfter); err != nil {
				return nil, err
			}
			o, err := a.Read.Operation(ctx, in.ID)
			if err != nil {
				return nil, a.notFoundOr(ctx, err, "operation", in.ID)
			}
			if !visible(ctx, o.ProjectID, false) {
				return nil, notFound(ctx, "operation", in.ID)
			}
			return &OperationOutput{Body: forCaller(ctx, operationOut(o))}, nil
		})

	huma.Register(hapi, huma.Operation{OperationID: "list-operations", Method: http.MethodGet, Path: "/v1/operations",
		Summary: "List operations", Description: "Operations, a page at a time; filter by resource id, kind or status.",
		Tags: []string{"operations"}},
		func(ctx context.Context, in *struct {
			ReadAfter
			PageParams
			AllProjects
			ResourceID string `query:"resource_id" format:"uuid"`
			Status     string `query:"status" enum:"pending,running,compensating,succeeded,failed"`
			Kind       string `query:"kind" maxLength:"64"`
		}) (*ListOutput[api.Operation], error) {
			if err := a.waitRead(ctx, in.ReadAfter); err != nil {
				return nil, err
			}
			scope, err := a.listScope(ctx, in.AllProjects)
			if err != nil {
				return nil, err
			}
			items, next, err := a.Read.Operations(ctx, postgres.OperationFilter{Scope: scope, ResourceID: in.ResourceID, Status: in.Status, Kind: in.Kind}, in.page())
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			return pageOut(items, next, func(o postgres.Operation) api.Operation { return forCaller(ctx, operationOut(o)) }), nil
		})
}

// forCaller leaves out the detail behind an operation's errors (a host's
// own message, with its paths and hypervisor internals) for all but cloud
// admins: users read the error, in their words.
func forCaller(ctx context.Context, o api.Operation) api.Operation {
	if p, _ := principalFrom(ctx); p.CloudAdmin {
		return o
	}
	o.Detail = ""
	for i := range o.Steps {
		o.Steps[i].Detail = ""
	}
	return o
}
