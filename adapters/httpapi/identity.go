package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/keel-cloud/keel/adapters/postgres"
	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain/project"
	"github.com/keel-cloud/keel/domain/token"
	"github.com/keel-cloud/keel/domain/user"
)

// IssuedTokenOutput is a new token; it is never cached.
type IssuedTokenOutput struct {
	Written
	CacheControl string `header:"Cache-Control"`
	Body         api.IssuedToken
}

// ProjectOutput is one project.
type ProjectOutput struct {
	Written
	Location string `header:"Location"`
	Body     api.Project
}

// UserOutput is one user.
type UserOutput struct {
	Written
	Location string `header:"Location"`
	Body     api.User
}

// WhoamiOutput is the caller.
type WhoamiOutput struct{ Body api.Whoami }

// MembersOutput lists a project's members.
type MembersOutput struct{ Body api.MemberList }

// MemberOutput is a role just given.
type MemberOutput struct {
	Written
	Body api.Member
}

func tokenView(st token.State) api.Token {
	t := api.Token{ID: string(st.ID), UserID: st.Spec.User, ProjectID: st.Spec.Project, Name: st.Spec.Name, ReadOnly: st.Spec.ReadOnly,
		CreatedAt: st.CreatedAt, ExpiresAt: st.Spec.ExpiresAt}
	if st.Revoked {
		t.RevokedAt = &st.RevokedAt
	}
	return t
}

func tokenOut(t postgres.Token) api.Token { return api.Token(t) }

func projectOut(p postgres.Project) api.Project { return api.Project(p) }

func memberOut(r postgres.RoleAssignment) api.Member { return api.Member(r) }

func userOut(u postgres.User) api.User {
	return api.User{ID: u.ID, Name: u.Name, Roles: all(u.Roles, memberOut), CreatedAt: u.CreatedAt}
}

func (a *API) registerIdentity(hapi huma.API) {
	a.registerTokens(hapi)
	a.registerProjects(hapi)
	a.registerUsers(hapi)
	a.registerQuotas(hapi)
}

func (a *API) registerTokens(hapi huma.API) {
	huma.Register(hapi, huma.Operation{OperationID: "create-token", Method: http.MethodPost, Path: api.Tokens,
		Summary: "Log in, or issue another token", Tags: []string{"identity"}, DefaultStatus: http.StatusCreated,
		Security: []map[string][]string{{}, {"bearer": {}}}, // a login needs no token
		Description: "Without an Authorization header: a password login (user, password), which answers 401 for a wrong name or password without saying which. " +
			"With one: another token for the caller (for a script), at most as strong as the caller's (a read-only caller gets a read-only token). " +
			"The token acts in one project: the one named, else the admin project for its admins, else the user's only project. " +
			"The secret is in this answer only (Cache-Control: no-store); Keel keeps its SHA-256."},
		func(ctx context.Context, in *struct{ Body api.TokenBody }) (*IssuedTokenOutput, error) {
			ttl := time.Duration(in.Body.ExpiresIn) * time.Second
			if ttl > token.MaxLifetime {
				return nil, problem(ctx, http.StatusUnprocessableEntity, "expires_in: a token may live at most 366 days")
			}
			var projectID string
			if in.Body.Project != "" {
				id, err := a.resolveUnique(ctx, commands.KindProject, in.Body.Project)
				if err != nil {
					return nil, unprocessable(err)
				}
				projectID = id
			}
			meta := a.meta(ctx, commandID(ctx))
			var secret string
			var st token.State
			var seq uint64
			if p, ok := principalFrom(ctx); ok {
				if in.Body.User != "" || in.Body.Password != "" {
					return nil, problem(ctx, http.StatusUnprocessableEntity, "send either a password login (no Authorization header) or a token request (no user and password), not both")
				}
				if ttl == 0 {
					ttl = commands.LoginTTL
				}
				name := in.Body.Name
				if name == "" {
					name = "api"
				}
				s, res, err := a.App.IssueToken(ctx, p, projectID, name, ttl, in.Body.ReadOnly, meta)
				if commands.IsAuthError(err) {
					return nil, forbidden(ctx, err.Error())
				}
				if err != nil {
					return nil, a.fail(ctx, err)
				}
				secret, st, seq = s, res.State, res.Seq
				if n := noteFrom(ctx); n != nil {
					n.tokenID = string(res.State.ID)
				}
			} else {
				noteLogin(ctx, in.Body.User, "", "", "")
				if in.Body.User == "" || in.Body.Password == "" {
					return nil, unauthorizedErr(ctx, "a login needs user and password")
				}
				// Guessing: past a few wrong passwords, each further one for
				// that name doubles the wait before the next is even checked.
				if wait := a.limits.logins.wait(in.Body.User, time.Now()); wait > 0 {
					secs := strconv.Itoa(int(wait.Seconds()) + 1)
					return nil, huma.ErrorWithHeaders(problem(ctx, http.StatusTooManyRequests,
						"too many wrong passwords for "+in.Body.User+"; retry after "+secs+" s"), http.Header{"Retry-After": {secs}})
				}
				s, res, err := a.App.Login(ctx, commands.LoginRequest{User: in.Body.User, Password: in.Body.Password, Project: projectID,
					TTL: ttl, ReadOnly: in.Body.ReadOnly, Name: in.Body.Name}, meta)
				if err != nil {
					if commands.IsAuthError(err) {
						if err == commands.ErrBadLogin {
							a.limits.logins.failed(in.Body.User, time.Now())
						}
						a.Log.Info("login refused", "request_id", requestIDFrom(ctx), "user", in.Body.User, "reason", err.Error())
						return nil, unauthorizedErr(ctx, err.Error())
					}
					return nil, a.fail(ctx, err)
				}
				a.limits.logins.succeeded(in.Body.User)
				noteLogin(ctx, in.Body.User, res.State.Spec.User, string(res.State.ID), res.State.Spec.Project)
				secret, st, seq = s, res.State, res.Seq
			}
			return &IssuedTokenOutput{Written: Written{seq}, CacheControl: "no-store", Body: api.IssuedToken{Token: tokenView(st), Secret: secret}}, nil
		})

	huma.Register(hapi, huma.Operation{OperationID: "list-tokens", Method: http.MethodGet, Path: api.Tokens,
		Summary: "List tokens", Tags: []string{"identity"},
		Description: "The caller's tokens (never their secrets), newest last; cloud admins list every user's with all_projects."},
		func(ctx context.Context, in *struct {
			ReadAfter
			PageParams
			AllProjects
			Live bool `query:"live" doc:"Leave out revoked and expired tokens"`
		}) (*ListOutput[api.Token], error) {
			if err := a.waitRead(ctx, in.ReadAfter); err != nil {
				return nil, err
			}
			scope, err := a.listScope(ctx, in.AllProjects)
			if err != nil {
				return nil, err
			}
			p, _ := principalFrom(ctx)
			f := postgres.TokenFilter{User: p.UserID, Live: in.Live}
			if scope.All {
				f.User = ""
			}
			items, next, err := a.Read.Tokens(ctx, f, in.page())
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			return pageOut(items, next, tokenOut), nil
		})

	huma.Register(hapi, huma.Operation{OperationID: "revoke-token", Method: http.MethodDelete, Path: api.Tokens + "/{id}",
		Summary: "Revoke a token", Tags: []string{"identity"}, DefaultStatus: http.StatusNoContent,
		Description: "The token stops working at once on this keel serve and within a second on the others. Users revoke their own; cloud admins any."},
		func(ctx context.Context, in *UUIDParam) (*DeletedOutput, error) {
			p, _ := principalFrom(ctx)
			res, err := a.App.RevokeToken(ctx, p, in.ID, a.meta(ctx, commandID(ctx)))
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			return &DeletedOutput{Written{res.Seq}}, nil
		})

	huma.Register(hapi, huma.Operation{OperationID: "get-whoami", Method: http.MethodGet, Path: api.WhoamiPath,
		Summary: "Show the caller", Tags: []string{"identity"},
		Description: "The user, project, role and token the request's token stands for."},
		func(ctx context.Context, _ *struct{}) (*WhoamiOutput, error) {
			p, _ := principalFrom(ctx)
			return &WhoamiOutput{Body: api.Whoami{UserID: p.UserID, UserName: p.UserName, ProjectID: p.Project, Role: string(p.Role),
				CloudAdmin: p.CloudAdmin, ReadOnly: p.ReadOnly, TokenID: p.TokenID, ExpiresAt: p.ExpiresAt}}, nil
		})
}

// countList says "2 servers, 1 keypairs" of what a project holds, in its order.
func countList(holds []postgres.Holding) string {
	parts := make([]string, len(holds))
	for i, h := range holds {
		parts[i] = strconv.Itoa(h.N) + " " + h.Kind
	}
	return strings.Join(parts, ", ")
}

// unauthorizedErr is a 401 answer from a handler.
func unauthorizedErr(ctx context.Context, msg string) error {
	return huma.ErrorWithHeaders(problem(ctx, http.StatusUnauthorized, msg), http.Header{"WWW-Authenticate": {`Bearer realm="keel"`}})
}

func (a *API) projectID(ctx context.Context, ref string) (string, error) {
	return a.resolveUnique(ctx, commands.KindProject, ref)
}

func (a *API) userID(ctx context.Context, ref string) (string, error) {
	return a.resolveUnique(ctx, commands.KindUser, ref)
}

// inProject reports whether the caller may see project id: a cloud admin,
// or a user with a role in it.
func (a *API) inProject(ctx context.Context, id string) (bool, error) {
	p, _ := principalFrom(ctx)
	if p.CloudAdmin || p.Project == id {
		return true, nil
	}
	u, _, err := a.App.Users.Load(ctx, p.UserID)
	if err != nil {
		return false, err
	}
	_, ok := u.Roles[id]
	return ok, nil
}

func (a *API) registerProjects(hapi huma.API) {
	huma.Register(hapi, huma.Operation{OperationID: "create-project", Method: http.MethodPost, Path: api.Projects,
		Summary: "Create a project", Tags: []string{"identity"}, DefaultStatus: http.StatusCreated,
		Description: "Cloud admins only. Names are unique. Give users roles in it with PUT /v1/projects/{id}/members/{user}."},
		func(ctx context.Context, in *struct{ Body api.ProjectBody }) (*ProjectOutput, error) {
			res, err := a.App.CreateProject(ctx, in.Body.Name, in.Body.Description, a.meta(ctx, commandID(ctx)))
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			s := res.State
			return &ProjectOutput{Written: Written{res.Seq}, Location: api.Projects + "/" + string(s.ID),
				Body: api.Project{ID: string(s.ID), Name: s.Name, Description: s.Description, CreatedAt: s.CreatedAt}}, nil
		})

	huma.Register(hapi, huma.Operation{OperationID: "list-projects", Method: http.MethodGet, Path: api.Projects,
		Summary: "List projects", Tags: []string{"identity"},
		Description: "The projects the caller has a role in; every project for cloud admins."},
		func(ctx context.Context, in *struct {
			ReadAfter
			PageParams
			Name string `query:"name" maxLength:"255"`
		}) (*ListOutput[api.Project], error) {
			if err := a.waitRead(ctx, in.ReadAfter); err != nil {
				return nil, err
			}
			f := postgres.ProjectFilter{Name: in.Name}
			if p, _ := principalFrom(ctx); !p.CloudAdmin {
				f.Member = p.UserID
			}
			items, next, err := a.Read.Projects(ctx, f, in.page())
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			return pageOut(items, next, projectOut), nil
		})

	huma.Register(hapi, huma.Operation{OperationID: "get-project", Method: http.MethodGet, Path: api.Projects + "/{id}",
		Summary: "Show a project", Tags: []string{"identity"}, Description: "One project by id or name, to its members and cloud admins."},
		func(ctx context.Context, in *struct {
			ReadAfter
			IDParam
		}) (*ProjectOutput, error) {
			if err := a.waitRead(ctx, in.ReadAfter); err != nil {
				return nil, err
			}
			id, err := a.visibleProject(ctx, in.ID)
			if err != nil {
				return nil, err
			}
			pr, err := a.Read.Project(ctx, id)
			if err != nil {
				return nil, a.notFoundOr(ctx, err, "project", in.ID)
			}
			return &ProjectOutput{Body: projectOut(pr)}, nil
		})

	huma.Register(hapi, huma.Operation{OperationID: "delete-project", Method: http.MethodDelete, Path: api.Projects + "/{id}",
		Summary: "Delete a project", Tags: []string{"identity"}, DefaultStatus: http.StatusNoContent,
		Description: "Cloud admins only; refused with 409 while the project still owns servers, keypairs, server groups, images, networks, subnets, ports, security groups (its default group goes with it), routers or floating IPs. Its members lose their role and their tokens for it stop working. The admin project cannot be deleted."},
		func(ctx context.Context, in *IDParam) (*DeletedOutput, error) {
			id, err := a.projectID(ctx, in.ID)
			if err != nil {
				return nil, err
			}
			if err := a.catchUp(ctx); err != nil {
				return nil, err
			}
			holds, err := a.Read.ProjectHolds(ctx, id)
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			if len(holds) > 0 {
				markVolatile(ctx)
				return nil, problem(ctx, http.StatusConflict, "project "+in.ID+" still owns "+countList(holds)+"; delete them first")
			}
			res, err := a.App.DeleteProject(ctx, id, a.meta(ctx, commandID(ctx)))
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			return &DeletedOutput{Written{res.Seq}}, nil
		})

	huma.Register(hapi, huma.Operation{OperationID: "list-members", Method: http.MethodGet, Path: api.Projects + "/{id}/members",
		Summary: "List a project's members", Tags: []string{"identity"}, Description: "Each user with a role in the project, to its members and cloud admins."},
		func(ctx context.Context, in *struct {
			ReadAfter
			IDParam
		}) (*MembersOutput, error) {
			if err := a.waitRead(ctx, in.ReadAfter); err != nil {
				return nil, err
			}
			id, err := a.visibleProject(ctx, in.ID)
			if err != nil {
				return nil, err
			}
			ms, err := a.Read.Members(ctx, id)
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			out := &MembersOutput{}
			out.Body.Items = all(ms, memberOut)
			if out.Body.Items == nil {
				out.Body.Items = []api.Member{}
			}
			return out, nil
		})

	huma.Register(hapi, huma.Operation{OperationID: "set-member", Method: http.MethodPut, Path: api.Projects + "/{id}/members/{user}",
		Summary: "Give a user a role in a project", Tags: []string{"identity"},
		Description: "Replaces any role the user had there. Project admins, for the project of their token; cloud admins, for any."},
		func(ctx context.Context, in *struct {
			IDParam
			User string `path:"user" maxLength:"255" doc:"User id or name"`
			Body api.MemberBody
		}) (*MemberOutput, error) {
			pid, uid, err := a.memberRefs(ctx, in.ID, in.User)
			if err != nil {
				return nil, err
			}
			res, err := a.App.GrantRole(ctx, uid, pid, user.Role(in.Body.Role), a.meta(ctx, commandID(ctx)))
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			return &MemberOutput{Written: Written{res.Seq}, Body: api.Member{UserID: uid, UserName: res.State.Name, ProjectID: pid, Role: in.Body.Role, GrantedAt: a.App.Now().UTC()}}, nil
		})

	huma.Register(hapi, huma.Operation{OperationID: "remove-member", Method: http.MethodDelete, Path: api.Projects + "/{id}/members/{user}",
		Summary: "Take a user's role in a project away", Tags: []string{"identity"}, DefaultStatus: http.StatusNoContent,
		Description: "The user's tokens for the project stop working. Project admins, for the project of their token; cloud admins, for any."},
		func(ctx context.Context, in *struct {
			IDParam
			User string `path:"user" maxLength:"255" doc:"User id or name"`
		}) (*DeletedOutput, error) {
			pid, uid, err := a.memberRefs(ctx, in.ID, in.User)
			if err != nil {
				return nil, err
			}
			res, err := a.App.RevokeRole(ctx, uid, pid, a.meta(ctx, commandID(ctx)))
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			return &DeletedOutput{Written{res.Seq}}, nil
		})
}

// visibleProject resolves a project the caller may see; others are not found.
func (a *API) visibleProject(ctx context.Context, ref string) (string, error) {
	id, err := a.projectID(ctx, ref)
	if err != nil {
		return "", err
	}
	ok, err := a.inProject(ctx, id)
	if err != nil {
		return "", a.fail(ctx, err)
	}
	if !ok {
		return "", notFound(ctx, "project", ref)
	}
	return id, nil
}

// memberRefs resolves the project and user of a membership change; a
// project admin manages only the project of their token.
func (a *API) memberRefs(ctx context.Context, projectRef, userRef string) (string, string, error) {
	pid, err := a.visibleProject(ctx, projectRef)
	if err != nil {
		return "", "", err
	}
	if p, _ := principalFrom(ctx); !p.CloudAdmin && p.Project != pid {
		return "", "", forbidden(ctx, "members of project "+projectRef+" are managed with a token of that project")
	}
	uid, err := a.userID(ctx, userRef)
	if err != nil {
		return "", "", unprocessable(err)
	}
	return pid, uid, nil
}

func (a *API) registerUsers(hapi huma.API) {
	huma.Register(hapi, huma.Operation{OperationID: "create-user", Method: http.MethodPost, Path: api.Users,
		Summary: "Create a user", Tags: []string{"identity"}, DefaultStatus: http.StatusCreated,
		Description: "Cloud admins only. Names are unique; the password (at least 12 characters) is kept as an argon2id hash. " +
			"With project, the user gets role (default member) there."},
		func(ctx context.Context, in *struct{ Body api.UserBody }) (*UserOutput, error) {
			var pid string
			if in.Body.Project != "" {
				id, err := a.projectID(ctx, in.Body.Project)
				if err != nil {
					return nil, unprocessable(err)
				}
				pid = id
			}
			meta := a.meta(ctx, commandID(ctx))
			res, err := a.App.CreateUser(ctx, in.Body.Name, in.Body.Password, meta)
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			st := res.State
			out := &UserOutput{Written: Written{res.Seq}, Location: api.Users + "/" + string(st.ID),
				Body: api.User{ID: string(st.ID), Name: st.Name, Roles: []api.Member{}, CreatedAt: st.CreatedAt}}
			if pid != "" {
				role := user.Role(in.Body.Role)
				if role == "" {
					role = user.Member
				}
				meta.CommandID += "/grant"
				g, err := a.App.GrantRole(ctx, string(st.ID), pid, role, meta)
				if err != nil {
					return nil, a.fail(ctx, err)
				}
				out.Sequence = g.Seq
				out.Body.Roles = []api.Member{{UserID: string(st.ID), UserName: st.Name, ProjectID: pid, Role: string(role), GrantedAt: a.App.Now().UTC()}}
			}
			return out, nil
		})

	huma.Register(hapi, huma.Operation{OperationID: "list-users", Method: http.MethodGet, Path: api.Users,
		Summary: "List users", Tags: []string{"identity"}, Description: "Cloud admins only: every user with their roles."},
		func(ctx context.Context, in *struct {
			ReadAfter
			PageParams
			Name string `query:"name" maxLength:"255"`
		}) (*ListOutput[api.User], error) {
			if err := a.waitRead(ctx, in.ReadAfter); err != nil {
				return nil, err
			}
			items, next, err := a.Read.Users(ctx, postgres.UserFilter{Name: in.Name}, in.page())
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			return pageOut(items, next, userOut), nil
		})

	huma.Register(hapi, huma.Operation{OperationID: "get-user", Method: http.MethodGet, Path: api.Users + "/{id}",
		Summary: "Show a user", Tags: []string{"identity"}, Description: "A user and their roles: oneself, or anyone for cloud admins."},
		func(ctx context.Context, in *struct {
			ReadAfter
			IDParam
		}) (*UserOutput, error) {
			if err := a.waitRead(ctx, in.ReadAfter); err != nil {
				return nil, err
			}
			id, err := a.selfOrAdmin(ctx, in.ID)
			if err != nil {
				return nil, err
			}
			u, err := a.Read.User(ctx, id)
			if err != nil {
				return nil, a.notFoundOr(ctx, err, "user", in.ID)
			}
			return &UserOutput{Body: userOut(u)}, nil
		})

	huma.Register(hapi, huma.Operation{OperationID: "delete-user", Method: http.MethodDelete, Path: api.Users + "/{id}",
		Summary: "Delete a user", Tags: []string{"identity"}, DefaultStatus: http.StatusNoContent,
		Description: "Cloud admins only. The user's tokens stop working. The bootstrap admin cannot be deleted."},
		func(ctx context.Context, in *IDParam) (*DeletedOutput, error) {
			id, err := a.userID(ctx, in.ID)
			if err != nil {
				return nil, err
			}
			res, err := a.App.DeleteUser(ctx, id, a.meta(ctx, commandID(ctx)))
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			return &DeletedOutput{Written{res.Seq}}, nil
		})

	huma.Register(hapi, huma.Operation{OperationID: "set-user-password", Method: http.MethodPut, Path: api.Users + "/{id}/password",
		Summary: "Change a password", Tags: []string{"identity"}, DefaultStatus: http.StatusNoContent,
		Description: "One's own, giving the present one as current_password; cloud admins set anyone's. Tokens already issued keep working until they expire or are revoked."},
		func(ctx context.Context, in *struct {
			IDParam
			Body api.PasswordBody
		}) (*DeletedOutput, error) {
			id, err := a.selfOrAdmin(ctx, in.ID)
			if err != nil {
				return nil, err
			}
			if p, _ := principalFrom(ctx); p.UserID == id {
				u, _, err := a.App.Users.LoadLatest(ctx, id)
				if err != nil {
					return nil, a.fail(ctx, err)
				}
				if !commands.CheckPassword(u.PasswordHash, in.Body.Current) {
					return nil, forbidden(ctx, "current_password is not your present password")
				}
			}
			res, err := a.App.SetPassword(ctx, id, in.Body.Password, a.meta(ctx, commandID(ctx)))
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			return &DeletedOutput{Written{res.Seq}}, nil
		})
}

// selfOrAdmin resolves a user the caller may see: themself, or anyone for
// a cloud admin; others are not found.
func (a *API) selfOrAdmin(ctx context.Context, ref string) (string, error) {
	id, err := a.userID(ctx, ref)
	if err != nil {
		return "", err
	}
	if p, _ := principalFrom(ctx); !p.CloudAdmin && p.UserID != id {
		return "", notFound(ctx, "user", ref)
	}
	return id, nil
}

// QuotasOutput is a project's quotas.
type QuotasOutput struct {
	Written
	Body api.Quotas
}

func quotasView(st project.State, version uint64) api.Quotas {
	out := api.Quotas{ProjectID: string(st.ID), Version: int64(version), Items: make([]api.Quota, 0, len(project.QuotaResources))}
	for _, r := range project.QuotaResources {
		q := api.Quota{Resource: r, InUse: st.Used[r]}
		if l, ok := st.Quotas[r]; ok {
			q.Limit = &l
		}
		out.Items = append(out.Items, q)
	}
	return out
}

func (a *API) registerQuotas(hapi huma.API) {
	huma.Register(hapi, huma.Operation{OperationID: "get-project-quotas", Method: http.MethodGet, Path: api.Projects + "/{id}/quotas",
		Summary: "Show a project's quotas and use", Tags: []string{"identity"},
		Description: "Each resource's limit (null: none) and what the project holds now, read from the project's own events (exact at once, not the read model's). To the project's members and cloud admins."},
		func(ctx context.Context, in *struct {
			ReadAfter
			IDParam
		}) (*QuotasOutput, error) {
			if err := a.waitRead(ctx, in.ReadAfter); err != nil {
				return nil, err
			}
			id, err := a.visibleProject(ctx, in.ID)
			if err != nil {
				return nil, err
			}
			st, v, err := a.App.Projects.LoadLatest(ctx, id)
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			if !st.Live() {
				return nil, notFound(ctx, "project", in.ID)
			}
			return &QuotasOutput{Body: quotasView(st, v)}, nil
		})

	huma.Register(hapi, huma.Operation{OperationID: "set-project-quotas", Method: http.MethodPut, Path: api.Projects + "/{id}/quotas",
		Summary: "Change a project's quotas", Tags: []string{"identity"},
		Description: "Cloud admins only. Sets the limits named (-1 removes one); the others stay. A limit below the present use holds back new servers only. " +
			"Creates reserve quota before anything is taken, under the server's id, on the project's own events: concurrent creates never pass a limit; a delete gives it back."},
		func(ctx context.Context, in *struct {
			IDParam
			Body api.QuotasBody
		}) (*QuotasOutput, error) {
			id, err := a.projectID(ctx, in.ID)
			if err != nil {
				return nil, err
			}
			res, err := a.App.Projects.Handle(ctx, id, project.SetQuotas{Limits: in.Body.Limits, At: a.App.Now().UTC()}, a.meta(ctx, commandID(ctx)))
			if err != nil {
				return nil, a.fail(ctx, err)
			}
			return &QuotasOutput{Written: Written{res.Seq}, Body: quotasView(res.State, res.Version)}, nil
		})
}
