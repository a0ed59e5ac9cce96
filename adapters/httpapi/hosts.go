package httpapi

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/host"
)

// HostsOutput lists hosts.
type HostsOutput struct {
	Body api.HostList
}

// HostOutput is one host.
type HostOutput struct {
	Written
	ETag string `header:"ETag" doc:"The host's version, for If-Match"`
	Body api.Host
}

func (a *API) registerHosts(hapi huma.API) {
	huma.Register(hapi, huma.Operation{OperationID: "list-hosts", Method: http.MethodGet, Path: "/v1/hosts",
		Summary: "List hosts with capacity total, used and free", Description: "Every registered host with its liveness, status, capacity (physical; total, which is physical times the overcommit ratios; used; free) and the servers placed on it.",
		Tags: []string{"hosts"}},
		func(ctx context.Context, in *struct{ ReadAfter }) (*HostsOutput, error) {
			if err := a.waitRead(ctx, in.ReadAfter); err != nil {
				return nil, err
			}
			hs, err := a.Read.Hosts(ctx)
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			out := &HostsOutput{}
			out.Body.Items = all(hs, hostOut)
			if out.Body.Items == nil {
				out.Body.Items = []api.Host{}
			}
			return out, nil
		})

	huma.Register(hapi, huma.Operation{OperationID: "get-host", Method: http.MethodGet, Path: "/v1/hosts/{id}",
		Summary: "Show a host", Description: "One host by id or name, with its capacity and claims.",
		Tags: []string{"hosts"}},
		func(ctx context.Context, in *struct {
			ReadAfter
			IDParam
		}) (*HostOutput, error) {
			if err := a.waitRead(ctx, in.ReadAfter); err != nil {
				return nil, err
			}
			h, err := a.Read.Host(ctx, in.ID)
			if err != nil {
				return nil, a.notFoundOr(ctx, err, "host", in.ID)
			}
			return &HostOutput{ETag: etag(h.Version), Body: hostOut(h)}, nil
		})

	type action struct {
		op, path, summary, description string
		cmd                            func(reason string) host.Command
	}
	for _, ac := range []action{
		{"enable-host", "enable", "Enable a host: it takes new servers again",
			"Undoes disable: the scheduler may place new servers on the host again.", func(string) host.Command { return host.Enable{} }},
		{"disable-host", "disable", "Disable a host: no new servers from now on",
			"The scheduler places no new server on a disabled host; the servers on it keep running. The optional reason is shown with the host's status.", func(r string) host.Command { return host.Disable{Reason: r} }},
		{"start-host-maintenance", "maintenance", "Put a host in maintenance: no new servers",
			"Like disable, for planned work; the servers on it keep running. The optional reason is shown with the host's status.", func(r string) host.Command { return host.SetMaintenance{On: true, Reason: r} }},
		{"end-host-maintenance", "maintenance/end", "End a host's maintenance",
			"Ends the maintenance started with POST /v1/hosts/{id}/maintenance.", func(string) host.Command { return host.SetMaintenance{} }},
	} {
		huma.Register(hapi, huma.Operation{OperationID: ac.op, Method: http.MethodPost, Path: "/v1/hosts/{id}/" + ac.path,
			Summary: ac.summary, Description: ac.description, Tags: []string{"hosts"}},
			func(ctx context.Context, in *struct {
				IDParam
				Body *api.ReasonBody `required:"false"`
			}) (*HostOutput, error) {
				reason := ""
				if in.Body != nil {
					reason = in.Body.Reason
				}
				return a.hostCommand(ctx, in.ID, stamp(ac.cmd(reason), a.App.Now().UTC()), 0)
			})
	}

	// PUT came first and stays; both merge on the server.
	for _, op := range []struct{ id, method string }{{"set-host-overcommit", http.MethodPatch}, {"put-host-overcommit", http.MethodPut}} {
		huma.Register(hapi, huma.Operation{OperationID: op.id, Method: op.method, Path: "/v1/hosts/{id}/overcommit",
			Summary: "Change a host's overcommit ratios", Tags: []string{"hosts"}, Deprecated: op.method == http.MethodPut,
			Description: "Changes the ratios given and keeps the others, merged on the host's current state. " +
				"With If-Match, refused with 412 unless the host is still at that version. Refused with 409 when the servers on the host would no longer fit."},
			a.setOvercommit)
	}

	huma.Register(hapi, huma.Operation{OperationID: "delete-host", Method: http.MethodDelete, Path: "/v1/hosts/{id}",
		Summary: "Remove an empty host", Tags: []string{"hosts"}, DefaultStatus: http.StatusNoContent,
		Description: "Refused with 409 while servers are placed on the host."},
		func(ctx context.Context, in *IDParam) (*DeletedOutput, error) {
			out, err := a.hostCommand(ctx, in.ID, host.Remove{At: a.App.Now().UTC()}, 0)
			if err != nil {
				return nil, err
			}
			return &DeletedOutput{out.Written}, nil
		})
}

// OvercommitInput changes some of a host's overcommit ratios.
type OvercommitInput struct {
	IDParam
	IfMatch
	Body api.RatiosPatch
}

func (a *API) setOvercommit(ctx context.Context, in *OvercommitInput) (*HostOutput, error) {
	v, err := in.version(ctx)
	if err != nil {
		return nil, err
	}
	return a.hostCommand(ctx, in.ID, host.SetRatios{Ratios: host.RatiosPatch(in.Body), At: a.App.Now().UTC()}, v)
}

// stamp sets the time on commands built without one.
func stamp(c host.Command, at time.Time) host.Command {
	switch c := c.(type) {
	case host.Enable:
		c.At = at
		return c
	case host.Disable:
		c.At = at
		return c
	case host.SetMaintenance:
		c.At = at
		return c
	}
	return c
}

// hostCommand sends a command to a host named by id or name, and answers
// with the host as the read model shows it once the commit is applied.
// ifVersion, when not 0, is the version the change is based on (If-Match).
func (a *API) hostCommand(ctx context.Context, ref string, cmd host.Command, ifVersion uint64) (*HostOutput, error) {
	id, err := a.hostID(ctx, ref)
	if err != nil {
		return nil, err
	}
	meta := a.meta(ctx, commandID(ctx))
	meta.IfVersion = ifVersion
	res, err := a.App.Hosts.Handle(ctx, id, cmd, meta)
	if domain.KindOf(err) == domain.NotFound {
		return nil, notFound(ctx, "host", ref)
	}
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	out := &HostOutput{Written: Written{res.Seq}}
	if _, ok := cmd.(host.Remove); ok {
		a.revokeRemoved(ctx, res.State.Spec.Name)
		seq, err := a.leaveAggregates(ctx, res.State)
		out.Sequence = max(out.Sequence, seq)
		return out, err
	}
	if err := a.waitRead(ctx, ReadAfter{MinSeq: res.Seq}); err != nil {
		return nil, err
	}
	h, err := a.Read.Host(ctx, id)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	out.Body = hostOut(h)
	out.ETag = etag(out.Body.Version)
	return out, nil
}

// hostID resolves a host id or name to the host's aggregate id.
func (a *API) hostID(ctx context.Context, ref string) (string, error) {
	if u, err := uuid.Parse(ref); err == nil {
		return u.String(), nil
	}
	if _, err := a.resolve(ctx, "host", ref, func(string) ([]string, error) { return []string{ref}, nil }); err != nil {
		return "", err
	}
	return commands.HostID(ref), nil
}

// leaveAggregates takes a removed host out of the host aggregates it was
// in: those it recorded joining, and those the read model shows (joined
// before hosts kept a record).
func (a *API) leaveAggregates(ctx context.Context, h host.State) (uint64, error) {
	ids, err := a.Read.AggregatesOfHost(ctx, h.Spec.Name)
	if err != nil {
		return 0, a.fail(ctx, err)
	}
	for id := range h.Aggregates {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	var seq uint64
	for _, id := range ids {
		res, err := a.App.RemoveAggregateHost(ctx, id, h.Spec.Name, a.meta(ctx, commandID(ctx)+"/leave/"+id))
		if err != nil && domain.KindOf(err) == 0 {
			return seq, a.fail(ctx, err)
		}
		seq = max(seq, res.Seq)
	}
	return seq, nil
}
