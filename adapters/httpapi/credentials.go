package httpapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/domain"
)

// HostKeys issues host credentials: the text of the file a host's agent
// connects with (keel agent --credentials).
type HostKeys interface {
	Issue(ctx context.Context, host string) ([]byte, error)
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
}
