package httpapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/domain"
)

// HostKeys issues host credentials (the text of the file a host's agent
// connects with, keel agent --credentials) and revokes them (a host
// without credentials is a domain.NotFound).
type HostKeys interface {
	Issue(ctx context.Context, host string) ([]byte, error)
	Revoke(ctx context.Context, host string) error
}

// HostNameParam names a host by name.
type HostNameParam struct {
	Host string `path:"host" maxLength:"63" doc:"The host's name"`
}

// HostCredentialsInput names the host to issue credentials for.
type HostCredentialsInput struct {
	Body api.HostCredentialsBody
}

// HostCredentialsOutput is a host's new credentials.
type HostCredentialsOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         api.IssuedHostCredentials
}

func (a *API) registerHostCredentials(hapi huma.API) {
	huma.Register(hapi, huma.Operation{OperationID: "issue-host-credentials", Method: http.MethodPost, Path: api.HostCredentials,
		Summary: "Issue the credentials of a compute node's agent", Tags: []string{"hosts"}, DefaultStatus: http.StatusCreated,
		Description: "Makes new credentials for the host and returns them once: they are not kept (only their public keys are). " +
			"With them the host's agent reads only its own host's work and speaks only for its own host; " +
			"admin passwords of the servers built there are sealed to them. Issuing again replaces them: the earlier ones no longer connect. " +
			"Never kept under an Idempotency-Key."},
		func(ctx context.Context, in *HostCredentialsInput) (*HostCredentialsOutput, error) {
			if a.HostKeys == nil {
				return nil, problem(ctx, http.StatusConflict, "this control plane issues no host credentials")
			}
			if err := domain.CheckName("host name", in.Body.Host); err != nil {
				return nil, a.fail(ctx, err)
			}
			text, err := a.HostKeys.Issue(ctx, in.Body.Host)
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			out := &HostCredentialsOutput{CacheControl: "no-store"}
			out.Body.Host, out.Body.Credentials = in.Body.Host, string(text)
			return out, nil
		})

	huma.Register(hapi, huma.Operation{OperationID: "revoke-host-credentials", Method: http.MethodDelete, Path: api.HostCredentials + "/{host}",
		Summary: "Revoke the credentials of a compute node's agent", Tags: []string{"hosts"}, DefaultStatus: http.StatusNoContent,
		Description: "Takes the host's credentials away, as for a compromised or retired compute node: its agent's connections are closed at once " +
			"and it cannot connect again; its host stops heartbeating and goes down; its work waits, and no admin password is sealed for it, " +
			"until new credentials are issued. 404 when the host holds none (never issued, or revoked already). Removing a host revokes them too."},
		func(ctx context.Context, in *HostNameParam) (*struct{}, error) {
			if a.HostKeys == nil {
				return nil, problem(ctx, http.StatusConflict, "this control plane issues no host credentials")
			}
			if err := a.HostKeys.Revoke(ctx, in.Host); err != nil {
				return nil, a.fail(ctx, err)
			}
			return nil, nil
		})
}

// revokeRemoved takes a removed host's credentials away, if it had any: a
// host that is gone has no agent to admit.
func (a *API) revokeRemoved(ctx context.Context, name string) {
	if a.HostKeys == nil {
		return
	}
	if err := a.HostKeys.Revoke(ctx, name); err != nil && domain.KindOf(err) != domain.NotFound {
		a.Log.Warn("revoke the credentials of a removed host", "host", name, "err", err)
	}
}
