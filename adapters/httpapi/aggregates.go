package httpapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain/hostaggregate"
)

// AggregateOutput is one host aggregate.
type AggregateOutput struct {
	Written
	Location string `header:"Location"`
	ETag     string `header:"ETag" doc:"The aggregate's version, for If-Match"`
	Body     api.HostAggregate
}

// ZonesOutput lists availability zones.
type ZonesOutput struct {
	Body api.AvailabilityZoneList
}

func (a *API) registerAggregates(hapi huma.API) {
	huma.Register(hapi, huma.Operation{OperationID: "create-aggregate", Method: http.MethodPost, Path: "/v1/aggregates",
		Summary: "Create a host aggregate", Description: "A host aggregate groups hosts under metadata that flavors' extra specs (aggregate:KEY=VALUE) match; an availability_zone key names a zone.",
		Tags: []string{"aggregates"}, DefaultStatus: http.StatusCreated},
		func(ctx context.Context, in *struct{ Body api.AggregateBody }) (*AggregateOutput, error) {
			md := map[string]string{}
			for k, v := range in.Body.Metadata {
				md[k] = v
			}
			if in.Body.AvailabilityZone != "" {
				md[hostaggregate.AZKey] = in.Body.AvailabilityZone
			}
			res, err := a.App.CreateAggregate(ctx, in.Body.Name, md, a.meta(ctx, commandID(ctx)))
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			id := res.State.ID
			return a.aggregateOut(ctx, id, res.Seq, "/v1/aggregates/"+id)
		})

	huma.Register(hapi, huma.Operation{OperationID: "list-aggregates", Method: http.MethodGet, Path: "/v1/aggregates",
		Summary: "List host aggregates", Description: "Host aggregates by name, a page at a time, with their metadata and hosts.",
		Tags: []string{"aggregates"}},
		func(ctx context.Context, in *struct {
			ReadAfter
			PageParams
			Name string `query:"name" maxLength:"255"`
		}) (*ListOutput[api.HostAggregate], error) {
			if err := a.waitRead(ctx, in.ReadAfter); err != nil {
				return nil, err
			}
			items, next, err := a.Read.HostAggregates(ctx, in.Name, in.page())
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			return pageOut(items, next, aggregateOut), nil
		})

	huma.Register(hapi, huma.Operation{OperationID: "get-aggregate", Method: http.MethodGet, Path: "/v1/aggregates/{id}",
		Summary: "Show a host aggregate", Description: "One host aggregate by id or name, with its metadata and hosts.",
		Tags: []string{"aggregates"}},
		func(ctx context.Context, in *struct {
			ReadAfter
			IDParam
		}) (*AggregateOutput, error) {
			if err := a.waitRead(ctx, in.ReadAfter); err != nil {
				return nil, err
			}
			id, err := a.aggregateID(ctx, in.ID)
			if err != nil {
				return nil, err
			}
			return a.aggregateOut(ctx, id, 0, "")
		})

	huma.Register(hapi, huma.Operation{OperationID: "set-aggregate-metadata", Method: http.MethodPut, Path: "/v1/aggregates/{id}/metadata",
		Summary: "Set host aggregate metadata (an empty value removes a key)",
		Description: "Merges the given keys into the aggregate's current metadata; a key with an empty value is removed, keys not given stay. " +
			"With If-Match, refused with 412 unless the aggregate is still at that version. Changing the availability_zone of an aggregate with hosts is refused with 409.",
		Tags: []string{"aggregates"}},
		func(ctx context.Context, in *struct {
			IDParam
			IfMatch
			Body api.MetadataBody
		}) (*AggregateOutput, error) {
			v, err := in.version(ctx)
			if err != nil {
				return nil, err
			}
			return a.aggregateCommand(ctx, in.ID, hostaggregate.SetMetadata{Metadata: in.Body.Metadata, At: a.App.Now().UTC()}, v)
		})

	huma.Register(hapi, huma.Operation{OperationID: "add-aggregate-host", Method: http.MethodPost, Path: "/v1/aggregates/{id}/hosts",
		Summary: "Add a host to a host aggregate",
		Description: "The host must exist (422 otherwise); from then on the scheduler matches the aggregate's metadata for it. " +
			"A host is in one availability zone: adding it to an aggregate of another zone is refused with 409.",
		Tags: []string{"aggregates"}},
		func(ctx context.Context, in *struct {
			IDParam
			Body api.AggregateHostBody
		}) (*AggregateOutput, error) {
			id, err := a.aggregateID(ctx, in.ID)
			if err != nil {
				return nil, err
			}
			res, err := a.App.AddAggregateHost(ctx, id, in.Body.Host, a.meta(ctx, commandID(ctx)))
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			return a.aggregateOut(ctx, id, res.Seq, "")
		})

	huma.Register(hapi, huma.Operation{OperationID: "remove-aggregate-host", Method: http.MethodDelete, Path: "/v1/aggregates/{id}/hosts/{host}",
		Summary: "Remove a host from a host aggregate", Description: "Servers already on the host stay where they are; only later placements see the change.",
		Tags: []string{"aggregates"}},
		func(ctx context.Context, in *struct {
			IDParam
			Host string `path:"host" maxLength:"255"`
		}) (*AggregateOutput, error) {
			id, err := a.aggregateID(ctx, in.ID)
			if err != nil {
				return nil, err
			}
			res, err := a.App.RemoveAggregateHost(ctx, id, in.Host, a.meta(ctx, commandID(ctx)))
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			return a.aggregateOut(ctx, id, res.Seq, "")
		})

	huma.Register(hapi, huma.Operation{OperationID: "delete-aggregate", Method: http.MethodDelete, Path: "/v1/aggregates/{id}",
		Summary: "Delete a host aggregate without hosts", Description: "Refused with 409 while the aggregate still has hosts.",
		Tags: []string{"aggregates"}, DefaultStatus: http.StatusNoContent},
		func(ctx context.Context, in *IDParam) (*DeletedOutput, error) {
			id, err := a.aggregateID(ctx, in.ID)
			if err != nil {
				return nil, err
			}
			res, err := a.App.DeleteAggregate(ctx, id, a.meta(ctx, commandID(ctx)))
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			return &DeletedOutput{Written{res.Seq}}, nil
		})

	huma.Register(hapi, huma.Operation{OperationID: "list-availability-zones", Method: http.MethodGet, Path: "/v1/availability-zones",
		Summary: "List availability zones and their hosts", Tags: []string{"aggregates"},
		Description: "Zones are named by host aggregates; hosts in none are in the zone named default."},
		func(ctx context.Context, in *struct{ ReadAfter }) (*ZonesOutput, error) {
			if err := a.waitRead(ctx, in.ReadAfter); err != nil {
				return nil, err
			}
			zs, err := a.Read.AvailabilityZones(ctx)
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			out := &ZonesOutput{}
			out.Body.Items = all(zs, zoneOut)
			return out, nil
		})
}

// aggregateCommand sends a command to a host aggregate; ifVersion, when
// not 0, is the version the change is based on (If-Match).
func (a *API) aggregateCommand(ctx context.Context, ref string, cmd hostaggregate.Command, ifVersion uint64) (*AggregateOutput, error) {
	id, err := a.aggregateID(ctx, ref)
	if err != nil {
		return nil, err
	}
	meta := a.meta(ctx, commandID(ctx))
	meta.IfVersion = ifVersion
	res, err := a.App.Aggregates.Handle(ctx, id, cmd, meta)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return a.aggregateOut(ctx, id, res.Seq, "")
}

// aggregateOut answers with the aggregate as the read model shows it once
// seq is applied.
func (a *API) aggregateOut(ctx context.Context, id string, seq uint64, location string) (*AggregateOutput, error) {
	if err := a.waitRead(ctx, ReadAfter{MinSeq: seq}); err != nil {
		return nil, err
	}
	ag, err := a.Read.HostAggregate(ctx, id)
	if err != nil {
		return nil, a.notFoundOr(ctx, err, "host aggregate", id)
	}
	return &AggregateOutput{Written: Written{seq}, Location: location, ETag: etag(ag.Version), Body: aggregateOut(ag)}, nil
}

func (a *API) aggregateID(ctx context.Context, ref string) (string, error) {
	return a.resolveUnique(ctx, commands.KindAggregate, ref)
}
