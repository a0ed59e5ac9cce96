package httpapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/projections"
)

// ProjectionsOutput lists projections.
type ProjectionsOutput struct {
	Body api.ProjectionList
}

// RebuildOutput reports rebuilds.
type RebuildOutput struct {
	Body api.RebuildList
}

func (a *API) registerAdmin(hapi huma.API) {
	huma.Register(hapi, huma.Operation{OperationID: "list-projections", Method: http.MethodGet, Path: "/v1/projections",
		Summary: "List read-model projections with their checkpoint and lag", Description: "Each read-model projection with its version, the stream sequence it has applied, and how many commits it is behind.",
		Tags: []string{"admin"}},
		func(ctx context.Context, _ *struct{}) (*ProjectionsOutput, error) {
			st, err := a.Runner.Statuses(ctx)
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			out := &ProjectionsOutput{}
			out.Body.Items = all(st, projectionOut)
			return out, nil
		})

	huma.Register(hapi, huma.Operation{OperationID: "rebuild-projection", Method: http.MethodPost, Path: "/v1/projections/{name}/rebuild",
		Summary: "Rebuild a projection from sequence 1", Tags: []string{"admin"},
		Description: "Replays the event log into new tables and swaps them in; reads keep being served meanwhile. Name 'all' rebuilds every projection."},
		func(ctx context.Context, in *struct {
			Name string `path:"name" maxLength:"64"`
		}) (*RebuildOutput, error) {
			var todo []projections.Projection
			if in.Name == "all" {
				todo = projections.All()
			} else if p, ok := projections.ByName(in.Name); ok {
				todo = []projections.Projection{p}
			} else {
				return nil, problem(ctx, http.StatusNotFound, "no projection named "+in.Name+"; see GET /v1/projections")
			}
			// All at once: the log is read once for every projection.
			res, err := a.Runner.RebuildAll(ctx, todo)
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			out := &RebuildOutput{}
			out.Body.Items = all(res, rebuildOut)
			return out, nil
		})

}
