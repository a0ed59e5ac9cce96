package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/keel-cloud/keel/adapters/postgres"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
)

// consolePath starts the URLs of graphical console sessions.
const consolePath = "/v1/console/"

type principalKey struct{}

// principalFrom is the caller of an authenticated request.
func principalFrom(ctx context.Context) (commands.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*commands.Principal)
	if !ok {
		return commands.Principal{}, false
	}
	return *p, true
}

// WithPrincipal returns ctx carrying p, as the authentication does: for
// tests of handlers without a token.
func WithPrincipal(ctx context.Context, p commands.Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, &p)
}

// Authenticator turns a bearer token into a principal (commands.App).
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (commands.Principal, error)
}

// open reports whether a request needs no token: health, readiness, the
// OpenAPI document and its page, a graphical console (its URL is its own
// single-use credential), and a password login.
func open(r *http.Request) bool {
	p := r.URL.Path
	switch {
	case p == "/healthz" || p == "/readyz" || p == "/docs" || strings.HasPrefix(p, "/openapi"):
		return r.Method == http.MethodGet || r.Method == http.MethodHead
	case strings.HasPrefix(p, consolePath):
		return r.Method == http.MethodGet
	case p == "/v1/tokens":
		return r.Method == http.MethodPost
	}
	return false
}

// authenticate reads the bearer token of every request and puts who it
// stands for in the context; a request without one, where one is needed,
// or with one that does not hold, is answered 401. What each principal may
// do is the policy's business (policy.go).
func (a *API) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		if h == "" {
			if open(r) {
				next.ServeHTTP(w, r)
				return
			}
			a.refuse(w, r, "authentication required: log in with POST /v1/tokens (keel login) and send Authorization: Bearer <token>")
			return
		}
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" || len(tok) > 512 {
			a.refuse(w, r, "Authorization must be Bearer <token>")
			return
		}
		if a.Auth == nil {
			a.refuse(w, r, "this API takes no tokens")
			return
		}
		p, err := a.Auth.Authenticate(r.Context(), strings.TrimSpace(tok))
		if err != nil {
			var ae *commands.AuthError
			if errors.As(err, &ae) {
				a.Log.Info("authentication refused", "request_id", requestIDFrom(r.Context()), "remote", r.RemoteAddr, "reason", ae.Msg)
				a.refuse(w, r, ae.Msg)
				return
			}
			a.Log.Error("authenticate", "request_id", requestIDFrom(r.Context()), "err", err)
			w.Header().Set("Retry-After", "1")
			writeProblem(w, r, http.StatusServiceUnavailable, "could not check the token just now; retry shortly")
			return
		}
		notePrincipal(r.Context(), p)
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

// refuse answers a request whose authentication failed (no token, a
// malformed or a refused one) with 401. Each refusal counts against its
// address, as logins do: guessing tokens, or a flood of requests without
// one (each would be an audit record), costs the sender, not the API; past
// the bound the answer is 429, which is not audited.
func (a *API) refuse(w http.ResponseWriter, r *http.Request, msg string) {
	if ok, wait := a.limits.perAddr.take("a:"+sourceAddr(r), time.Now()); !ok {
		tooMany(w, r, wait, "too many refused authentications from "+sourceAddr(r))
		return
	}
	unauthorized(w, r, msg)
}

func unauthorized(w http.ResponseWriter, r *http.Request, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="keel"`)
	writeProblem(w, r, http.StatusUnauthorized, msg)
}

// meta builds the command metadata of a request: the caller as actor, and
// the caller's project as the scope of what the command may touch (none
// for a cloud admin, who acts on every project's resources by id).
func (a *API) meta(ctx context.Context, cid string) commands.Meta {
	m := commands.Meta{CommandID: cid, RequestID: requestIDFrom(ctx), Actor: domain.Actor{User: "anonymous"}}
	if p, ok := principalFrom(ctx); ok {
		m.Actor = p.Actor()
		if !p.CloudAdmin {
			m.Scope = p.Project
		}
	}
	return m
}

// AllProjects is embedded in the lists of project resources.
type AllProjects struct {
	AllProjects bool `query:"all_projects" doc:"Cloud admins only: list every project's, not only the project of the token"`
}

// listScope is what a list may show: the caller's project, or everything
// for a cloud admin who asks for all_projects.
func (a *API) listScope(ctx context.Context, all AllProjects) (postgres.Scope, error) {
	p, ok := principalFrom(ctx)
	if !ok {
		return postgres.Scope{}, problem(ctx, http.StatusUnauthorized, "authentication required")
	}
	if all.AllProjects {
		if !p.CloudAdmin {
			return postgres.Scope{}, problem(ctx, http.StatusForbidden, "all_projects is for cloud admins")
		}
		return postgres.Scope{All: true}, nil
	}
	return postgres.Scope{Project: p.Project, Cloud: p.CloudAdmin}, nil
}

// visible reports whether the caller may see a resource of project owner
// (nil: of no project): its own project's, or any for a cloud admin.
// Public says that resources of no project (public images) are everyone's.
func visible(ctx context.Context, owner *string, public bool) bool {
	p, ok := principalFrom(ctx)
	if !ok {
		return false
	}
	switch {
	case p.CloudAdmin:
		return true
	case owner == nil:
		return public
	}
	return *owner == p.Project
}

// owns reports whether the caller may change a resource of project owner
// ("" for the cloud's own): the owner's members, and cloud admins.
func owns(ctx context.Context, owner string) bool {
	p, ok := principalFrom(ctx)
	return ok && (p.CloudAdmin || (owner != "" && owner == p.Project))
}

// ownProject is the caller's project ("" without a principal).
func ownProject(ctx context.Context) string {
	p, _ := principalFrom(ctx)
	return p.Project
}

// forbidden is a 403 that says what the caller lacks.
func forbidden(ctx context.Context, msg string) error { return problem(ctx, http.StatusForbidden, msg) }

// cloudAdminOnly guards a handler outside the OpenAPI operations (the
// metrics) with the cloud admin rule.
func cloudAdminOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := principalFrom(r.Context()); !ok || !p.CloudAdmin {
			writeProblem(w, r, http.StatusForbidden, "the metrics are for cloud admins")
			return
		}
		h.ServeHTTP(w, r)
	})
}
