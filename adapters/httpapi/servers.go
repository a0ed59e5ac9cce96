package httpapi

import (
	"context"
	"encoding/base64"
	"net/http"
	"slices"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/keel-cloud/keel/adapters/postgres"
	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/server"
)

// AcceptedOutput is a 202 answer.
type AcceptedOutput struct {
	Written
	Location string `header:"Location"`
	Body     api.Accepted
}

// ServerOutput is one server.
type ServerOutput struct {
	Body api.Server
}

func serverView(st server.State, version uint64, at time.Time) api.Server {
	v := api.Server{ID: string(st.ID), Name: st.Name, Status: string(st.Status), Desired: string(st.Desired),
		Power: string(st.Power), Flavor: api.ServerFlavor(st.Flavor), ImageID: st.ImageID, Version: int64(version), CreatedAt: st.CreatedAt, UpdatedAt: at,
		KeepRunning: st.KeepRunning, DataDisksGiB: append([]int{}, st.DataDisksGiB...), NICs: []api.ServerNIC{}, Addresses: []string{}}
	for _, n := range st.NICs {
		v.NICs = append(v.NICs, api.ServerNIC{PortID: n.Port, NetworkID: n.Network, MAC: n.MAC, IPs: append([]string{}, n.IPs...)})
		v.Addresses = append(v.Addresses, n.IPs...)
	}
	if st.Project != "" {
		v.ProjectID = &st.Project
	}
	if st.Reason != "" {
		v.Reason = &st.Reason
	}
	if st.Task != server.NoTask {
		t := string(st.Task)
		v.Task = &t
	}
	if st.Host != "" {
		v.Host = &st.Host
	}
	if st.Operation != "" {
		v.OperationID = &st.Operation
	}
	if st.KeyName != "" {
		v.KeyName = &st.KeyName
	}
	return v
}

func (a *API) registerServers(hapi huma.API) {
	huma.Register(hapi, huma.Operation{OperationID: "create-server", Method: http.MethodPost, Path: "/v1/servers",
		Summary: "Create a server", Tags: []string{"servers"}, DefaultStatus: http.StatusAccepted,
		Description: "Answers 202 with the BUILDING server and the id of the operation that builds it; 503 with Retry-After while the control plane works through a backlog."},
		func(ctx context.Context, in *struct{ Body api.ServerBody }) (*AcceptedOutput, error) {
			if err := domain.CheckName("name", in.Body.Name); err != nil {
				return nil, a.fail(ctx, err)
			}
			if err := a.projectBusy(ctx); err != nil {
				return nil, err
			}
			if full := a.Backlog.Full(ctx); full != "" {
				return nil, huma.ErrorWithHeaders(
					problem(ctx, http.StatusServiceUnavailable, "not accepting new servers for a moment: "+full+"; retry shortly"),
					http.Header{"Retry-After": {"2"}})
			}
			flavorID, err := a.flavorID(ctx, in.Body.Flavor)
			if err != nil {
				return nil, unprocessable(err)
			}
			imageID, err := a.imageID(ctx, in.Body.Image)
			if err != nil {
				return nil, unprocessable(err)
			}
			hints := server.Hints{AvailabilityZone: in.Body.AvailabilityZone, TargetHost: in.Body.TargetHost}
			if p, _ := principalFrom(ctx); hints.TargetHost != "" && !p.CloudAdmin {
				return nil, forbidden(ctx, "target_host is for cloud admins: hosts are not shown to projects")
			}
			if err := a.checkHints(ctx, hints); err != nil {
				return nil, err
			}
			if in.Body.ServerGroup != "" {
				if hints.ServerGroup, err = a.groupID(ctx, in.Body.ServerGroup); err != nil {
					return nil, unprocessable(err)
				}
			}
			userData, err := decodeUserData(in.Body.UserData)
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			var keypairID string
			if in.Body.KeyName != "" {
				if keypairID, err = a.keypairID(ctx, in.Body.KeyName); err != nil {
					return nil, unprocessable(err)
				}
			}
			cid := commandID(ctx)
			req := commands.CreateServerRequest{Name: in.Body.Name, FlavorID: flavorID, ImageID: imageID, Hints: hints, UserData: userData, KeepRunning: in.Body.KeepRunning, KeypairID: keypairID,
				DataDisksGiB: in.Body.DataDisksGiB}
			for _, n := range in.Body.Networks {
				id, err := a.networkID(ctx, n.Network)
				if err != nil {
					return nil, unprocessable(err)
				}
				req.Networks = append(req.Networks, id)
			}
			res, opID, err := a.App.CreateServer(ctx, req, a.meta(ctx, cid))
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			id := string(res.State.ID)
			return &AcceptedOutput{Written: Written{res.Seq}, Location: "/v1/servers/" + id,
				Body: api.Accepted{Server: serverView(res.State, res.Version, a.App.Now().UTC()), OperationID: opID}}, nil
		})

	huma.Register(hapi, huma.Operation{OperationID: "list-servers", Method: http.MethodGet, Path: "/v1/servers",
		Summary: "List servers", Description: "Servers, a page at a time, with desired, observed and task state; filter by name, status, host, image or flavor.",
		Tags: []string{"servers"}},
		func(ctx context.Context, in *struct {
			ReadAfter
			PageParams
			AllProjects
			Name     string `query:"name" maxLength:"255"`
			Status   string `query:"status" enum:"BUILDING,ACTIVE,STOPPED,REBOOTING,DELETING,ERROR"`
			Host     string `query:"host" maxLength:"255"`
			ImageID  string `query:"image_id" format:"uuid"`
			FlavorID string `query:"flavor_id" format:"uuid"`
		}) (*ListOutput[api.Server], error) {
			if err := a.waitRead(ctx, in.ReadAfter); err != nil {
				return nil, err
			}
			scope, err := a.listScope(ctx, in.AllProjects)
			if err != nil {
				return nil, err
			}
			f := postgres.ServerFilter{Scope: scope, Name: in.Name, Status: in.Status, Host: in.Host, ImageID: in.ImageID, FlavorID: in.FlavorID}
			items, next, err := a.Read.Servers(ctx, f, in.page())
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			return pageOut(items, next, serverOut), nil
		})

	huma.Register(hapi, huma.Operation{OperationID: "get-server", Method: http.MethodGet, Path: "/v1/servers/{id}",
		Summary: "Show a server", Description: "One server by id or name (a name shared by several servers is a 409: use the id). " +
			"With at (RFC 3339), the server as it was then, folded from its events (a deleted server by id).",
		Tags: []string{"servers"}},
		func(ctx context.Context, in *struct {
			ReadAfter
			IDParam
			At string `query:"at" maxLength:"64" doc:"A time (RFC 3339, e.g. 2026-12-02T15:04:05Z): show the server as it was then, from its events"`
		}) (*ServerOutput, error) {
			if err := a.waitRead(ctx, in.ReadAfter); err != nil {
				return nil, err
			}
			if in.At != "" {
				return a.serverAt(ctx, in.ID, in.At)
			}
			s, err := a.readServer(ctx, in.ID)
			if err != nil {
				return nil, err
			}
			return &ServerOutput{Body: serverOut(s)}, nil
		})

	huma.Register(hapi, huma.Operation{OperationID: "get-server-login-info", Method: http.MethodGet, Path: "/v1/servers/{id}/login-info",
		Summary: "Show a server's login info", Tags: []string{"servers"},
		Description: "The admin user (keel) and the password Keel generated for it at create, opened from the server's own events " +
			"(where it is kept sealed). 404 for an unknown or deleted server; 409 for a server that has no generated password " +
			"(created before Keel generated them). Answers carry Cache-Control: no-store. Once tenancy lands, only the server's owner may read it."},
		a.loginInfo)

	huma.Register(hapi, huma.Operation{OperationID: "delete-server", Method: http.MethodDelete, Path: "/v1/servers/{id}",
		Summary: "Delete a server", Tags: []string{"servers"}, DefaultStatus: http.StatusAccepted,
		Description: "Works in any state; an operation in progress on the server ends as superseded."},
		func(ctx context.Context, in *IDParam) (*AcceptedOutput, error) {
			return a.act(ctx, in.ID, commands.ActionDelete)
		})

	for _, action := range []commands.ServerAction{commands.ActionStart, commands.ActionStop} {
		huma.Register(hapi, huma.Operation{OperationID: string(action) + "-server", Method: http.MethodPost,
			Path: "/v1/servers/{id}/" + string(action), Summary: actionSummary[action], Description: actionDescription[action], Tags: []string{"servers"},
			DefaultStatus: http.StatusAccepted},
			func(ctx context.Context, in *IDParam) (*AcceptedOutput, error) {
				return a.act(ctx, in.ID, action)
			})
	}
	huma.Register(hapi, huma.Operation{OperationID: "reboot-server", Method: http.MethodPost,
		Path: "/v1/servers/{id}/reboot", Summary: actionSummary[commands.ActionReboot], Description: actionDescription[commands.ActionReboot],
		Tags: []string{"servers"}, DefaultStatus: http.StatusAccepted},
		func(ctx context.Context, in *struct {
			IDParam
			Type string `query:"type" enum:"soft,hard" default:"soft" doc:"soft: a graceful shutdown (forced after the host's stop timeout), then a start; hard: a reset"`
		}) (*AcceptedOutput, error) {
			if in.Type == "hard" {
				return a.act(ctx, in.ID, commands.ActionHardReboot)
			}
			return a.act(ctx, in.ID, commands.ActionReboot)
		})
}

var actionSummary = map[commands.ServerAction]string{
	commands.ActionStart: "Start a stopped server", commands.ActionStop: "Stop a running server",
	commands.ActionReboot: "Reboot a running server",
}

var actionDescription = map[commands.ServerAction]string{
	commands.ActionStart:  "Answers 202 with the server and the operation that powers it on; refused with 409 unless the server is STOPPED.",
	commands.ActionStop:   "Answers 202 with the server and the operation that powers it off; refused with 409 unless the server is ACTIVE.",
	commands.ActionReboot: "Answers 202 with the server and the operation that reboots it; refused with 409 unless the server is ACTIVE.",
}

func (a *API) act(ctx context.Context, ref string, action commands.ServerAction) (*AcceptedOutput, error) {
	id, err := a.serverID(ctx, ref)
	if err != nil {
		return nil, err
	}
	if action != commands.ActionDelete {
		if err := a.projectBusy(ctx); err != nil {
			return nil, err
		}
	}
	res, opID, err := a.App.ActOnServer(ctx, id, action, a.meta(ctx, commandID(ctx)))
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &AcceptedOutput{Written: Written{res.Seq}, Location: "/v1/operations/" + opID,
		Body: api.Accepted{Server: serverView(res.State, res.Version, a.App.Now().UTC()), OperationID: opID}}, nil
}

// readServer reads the server ref names (id or name) from the read model.
func (a *API) readServer(ctx context.Context, ref string) (postgres.Server, error) {
	id, err := a.serverID(ctx, ref)
	if err != nil {
		return postgres.Server{}, err
	}
	s, err := a.Read.Server(ctx, id)
	if err != nil {
		return s, a.notFoundOr(ctx, err, "server", ref)
	}
	if !visible(ctx, s.ProjectID, false) {
		return s, notFound(ctx, "server", ref)
	}
	return s, nil
}

func (a *API) serverID(ctx context.Context, ref string) (string, error) {
	return a.resolve(ctx, "server", ref, func(name string) ([]string, error) {
		items, _, err := a.Read.Servers(ctx, postgres.ServerFilter{Scope: postgres.Scope{Project: ownProject(ctx)}, Name: name}, postgres.Page{Limit: 2})
		return ids(items, func(s postgres.Server) string { return s.ID }), err
	})
}

// unprocessable turns "the flavor named in the body does not exist" into a
// 422: the request, not the URL, names something missing.
func unprocessable(err error) error {
	if m, ok := err.(*huma.ErrorModel); ok && m.Status == http.StatusNotFound {
		m.Status, m.Title = http.StatusUnprocessableEntity, http.StatusText(http.StatusUnprocessableEntity)
	}
	return err
}

// checkHints refuses hints that name a zone or host that does not exist.
func (a *API) checkHints(ctx context.Context, h server.Hints) error {
	if h.AvailabilityZone != "" {
		zones, err := a.Read.AvailabilityZones(ctx)
		if err != nil {
			return a.fail(ctx, err)
		}
		known := func(zones []postgres.AvailabilityZone) bool {
			return slices.ContainsFunc(zones, func(z postgres.AvailabilityZone) bool { return z.Name == h.AvailabilityZone })
		}
		if !known(zones) {
			// Zones live in the read model: catch up before refusing.
			if err := a.catchUp(ctx); err != nil {
				return err
			}
			if zones, err = a.Read.AvailabilityZones(ctx); err != nil {
				return a.fail(ctx, err)
			}
		}
		if !known(zones) {
			markVolatile(ctx)
			return problem(ctx, http.StatusUnprocessableEntity, "availability zone "+h.AvailabilityZone+" does not exist; see GET /v1/availability-zones")
		}
	}
	if h.TargetHost != "" {
		st, _, err := a.App.Hosts.Load(ctx, commands.HostID(h.TargetHost))
		if err != nil {
			return a.fail(ctx, err)
		}
		if !st.Exists || st.Removed {
			return problem(ctx, http.StatusUnprocessableEntity, "target host "+h.TargetHost+" does not exist")
		}
	}
	return nil
}

// decodeUserData reads a server's base64 user data.
func decodeUserData(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, domain.Invalidf("user_data is not base64: %v", err)
	}
	return b, nil // its size is the domain's to check
}

// serverAt answers GET /v1/servers/{id}?at=T from the server's events, not
// the read model: its state folded from the commits made up to T. A server
// of another project, or one that did not exist yet, is not found.
func (a *API) serverAt(ctx context.Context, ref, at string) (*ServerOutput, error) {
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return nil, problem(ctx, http.StatusUnprocessableEntity, "at must be a time in RFC 3339 form, e.g. 2026-12-02T15:04:05Z: "+err.Error())
	}
	id, err := a.serverID(ctx, ref)
	if err != nil {
		return nil, err
	}
	st, version, last, existed, err := a.App.Servers.StateAt(ctx, id, t)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	owner := &st.Project
	if st.Project == "" {
		owner = nil
	}
	if !existed || !visible(ctx, owner, false) {
		return nil, problem(ctx, http.StatusNotFound, "server "+ref+" did not exist at "+t.UTC().Format(time.RFC3339Nano))
	}
	if st.Status == server.StatusDeleted {
		return nil, problem(ctx, http.StatusNotFound, "server "+ref+" was deleted by "+t.UTC().Format(time.RFC3339Nano)+" (at "+last.UTC().Format(time.RFC3339Nano)+")")
	}
	return &ServerOutput{Body: serverView(st, version, last)}, nil
}
