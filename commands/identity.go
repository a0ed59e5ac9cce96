package commands

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/argon2"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/project"
	"github.com/keel-cloud/keel/domain/secgroup"
	"github.com/keel-cloud/keel/domain/token"
	"github.com/keel-cloud/keel/domain/user"
	"github.com/keel-cloud/keel/secrets"
)

// Name kinds of identity.
const (
	KindProject = project.AggregateType
	KindUser    = user.AggregateType
)

// LoginTTL is how long a token from a password login lives by default.
const LoginTTL = 12 * time.Hour

// AdminProjectID is the id of the project whose admins are cloud admins.
func AdminProjectID() string { return DeriveID("project", project.AdminName) }

// AdminUserID is the id of the bootstrap admin.
func AdminUserID() string { return DeriveID("user", user.AdminName) }

// Principal is who a request acts as: a user, through a token, in one
// project, with one role there.
type Principal struct {
	UserID   string
	UserName string
	TokenID  string
	Project  string
	// Role is the user's role in Project, reader at most for a read-only token.
	Role user.Role
	// CloudAdmin: an admin of the admin project, through a token that may write.
	CloudAdmin bool
	ReadOnly   bool
	ExpiresAt  time.Time
}

// Actor is the principal as recorded in commits.
func (p Principal) Actor() domain.Actor {
	return domain.Actor{User: p.UserID, Project: p.Project, Roles: []string{string(p.Role)}}
}

// AuthError refuses a request whose credentials do not hold; its message
// is for the caller and says no more than it must.
type AuthError struct{ Msg string }

func (e *AuthError) Error() string { return e.Msg }

// ErrBadLogin is every failed password login: it does not say whether the
// user exists.
var ErrBadLogin = &AuthError{Msg: "wrong user name or password"}

// Password hashing: argon2id with the parameters OWASP recommends (19 MiB,
// two passes), in PHC string form.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

// MinPasswordLen is the shortest password a user may set.
const MinPasswordLen = 12

// HashPassword returns the argon2id hash of a password.
func HashPassword(pw string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// dummyHash is checked against when a user does not exist, so that a
// failed login takes as long whether or not the name is known. It is made
// at the first such login, not when the package loads: every keel command
// (the CLI too) would otherwise pay an argon2id hash at start.
var dummyHash = sync.OnceValue(func() string {
	h, _ := HashPassword("keel: no such user")
	return h
})

// CheckPassword reports whether pw matches an argon2id hash.
func CheckPassword(hash, pw string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m > 256*1024 || t > 16 || p == 0 {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// checkNewPassword refuses passwords too short or with control characters.
func checkNewPassword(pw string) error {
	if len([]rune(pw)) < MinPasswordLen {
		return domain.Invalidf("a password must have at least %d characters", MinPasswordLen)
	}
	return domain.CheckTextUpTo("password", pw, 1024)
}

// Token secrets are "kt." + the token id + "." + 32 random bytes in
// base64url: the id finds the token, the hash of the whole string proves it.
const tokenPrefix = "kt."

func newTokenSecret(id string) (string, string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	secret := tokenPrefix + id + "." + base64.RawURLEncoding.EncodeToString(b)
	return secret, secretHash(secret), nil
}

func secretHash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// tokenID reads the id out of a token secret.
func tokenID(secret string) (string, bool) {
	rest, ok := strings.CutPrefix(secret, tokenPrefix)
	if !ok {
		return "", false
	}
	id, _, ok := strings.Cut(rest, ".")
	if !ok {
		return "", false
	}
	u, err := uuid.Parse(id)
	return u.String(), err == nil && u.String() == id
}

// Bootstrap makes the admin project and the admin user, an admin of it, on
// first start. The password is the one given, else a generated one,
// returned so that it can be shown once; later starts change nothing and
// return "". Replicas starting together agree: the commands have fixed ids.
func (a *App) Bootstrap(ctx context.Context, password string) (generated string, err error) {
	meta := Meta{CommandID: "bootstrap/project/admin", Actor: domain.Actor{User: "bootstrap"}}
	pid := AdminProjectID()
	if err := a.reserveName(ctx, KindProject, "", project.AdminName, pid); err != nil {
		return "", fmt.Errorf("bootstrap: %w", err)
	}
	if _, err := a.Projects.Handle(ctx, pid, project.Create{ID: project.ID(pid), Name: project.AdminName,
		Description: "the cloud's operators: its admins are cloud admins", At: a.Now().UTC()}, meta); err != nil && domain.KindOf(err) != domain.Conflict {
		return "", fmt.Errorf("bootstrap the admin project: %w", err)
	}
	uid := AdminUserID()
	st, _, err := a.Users.LoadLatest(ctx, uid)
	if err != nil {
		return "", err
	}
	if st.Exists {
		return "", nil
	}
	pw := password
	if pw == "" {
		if pw, err = secrets.Password(); err != nil {
			return "", err
		}
	} else if err := checkNewPassword(pw); err != nil {
		return "", fmt.Errorf("KEEL_ADMIN_PASSWORD: %w", err)
	}
	hash, err := HashPassword(pw)
	if err != nil {
		return "", err
	}
	if err := a.reserveName(ctx, KindUser, "", user.AdminName, uid); err != nil {
		return "", fmt.Errorf("bootstrap: %w", err)
	}
	meta.CommandID = "bootstrap/user/admin"
	res, err := a.Users.Handle(ctx, uid, user.Create{ID: user.ID(uid), Name: user.AdminName, PasswordHash: hash, At: a.Now().UTC()}, meta)
	if err != nil && domain.KindOf(err) != domain.Conflict {
		return "", fmt.Errorf("bootstrap the admin user: %w", err)
	}
	meta.CommandID = "bootstrap/user/admin/grant"
	if _, err := a.Users.Handle(ctx, uid, user.Grant{Project: pid, Role: user.Admin, At: a.Now().UTC()}, meta); err != nil {
		return "", fmt.Errorf("bootstrap the admin's role: %w", err)
	}
	if err != nil || res.Duplicate || password != "" {
		return "", nil // another replica made it, or the operator chose the password
	}
	return pw, nil
}

// LoginRequest is a password login.
type LoginRequest struct {
	User, Password string
	// Project is the project id to act in ("": the only project the user
	// has a role in, or the admin project for its admins).
	Project  string
	TTL      time.Duration // 0: LoginTTL
	ReadOnly bool
	Name     string // "": "login"
}

// Login checks a user's password and issues a token. It returns the
// token's secret, shown once.
func (a *App) Login(ctx context.Context, req LoginRequest, meta Meta) (string, Result[token.State], error) {
	fail := func(err error) (string, Result[token.State], error) { return "", Result[token.State]{}, err }
	if err := domain.CheckName("user", req.User); err != nil {
		return fail(ErrBadLogin)
	}
	uid, found, err := a.LookupName(ctx, KindUser, "", req.User)
	if err != nil {
		return fail(err)
	}
	var u user.State
	if found {
		if u, _, err = a.Users.LoadLatest(ctx, uid); err != nil {
			return fail(err)
		}
	}
	hash := u.PasswordHash
	if !u.Live() {
		hash = dummyHash()
	}
	if ok := CheckPassword(hash, req.Password); !ok || !u.Live() {
		return fail(ErrBadLogin)
	}
	pid := req.Project
	if pid == "" {
		if pid, err = defaultProject(u); err != nil {
			return fail(err)
		}
	}
	if req.Name == "" {
		req.Name = "login"
	}
	if req.TTL == 0 {
		req.TTL = LoginTTL
	}
	meta.Actor = domain.Actor{User: uid, Project: pid}
	return a.issue(ctx, u, pid, req.Name, req.TTL, req.ReadOnly, meta)
}

// IssueToken gives the calling user another token (for a script, say). A
// read-only caller gets a read-only token.
func (a *App) IssueToken(ctx context.Context, p Principal, projectID, name string, ttl time.Duration, readOnly bool, meta Meta) (string, Result[token.State], error) {
	u, _, err := a.Users.LoadLatest(ctx, p.UserID)
	if err != nil {
		return "", Result[token.State]{}, err
	}
	if projectID == "" {
		projectID = p.Project
	}
	return a.issue(ctx, u, projectID, name, ttl, readOnly || p.ReadOnly, meta)
}

func (a *App) issue(ctx context.Context, u user.State, pid, name string, ttl time.Duration, readOnly bool, meta Meta) (string, Result[token.State], error) {
	if _, ok := u.Roles[pid]; !ok {
		return "", Result[token.State]{}, &AuthError{Msg: "user " + u.Name + " has no role in project " + pid}
	}
	pr, _, err := a.Projects.Load(ctx, pid)
	if err != nil {
		return "", Result[token.State]{}, err
	}
	if !pr.Live() {
		return "", Result[token.State]{}, &AuthError{Msg: "project " + pid + " does not exist"}
	}
	id := DeriveID(meta.CommandID, "token")
	secret, sum, err := newTokenSecret(id)
	if err != nil {
		return "", Result[token.State]{}, err
	}
	now := a.Now().UTC()
	res, err := a.Tokens.Create(ctx, id, token.Issue{ID: token.ID(id), At: now, Spec: token.Spec{
		User: string(u.ID), Project: pid, Name: name, ReadOnly: readOnly, SecretSHA256: sum, ExpiresAt: now.Add(ttl)}}, meta)
	if err != nil {
		return "", res, err
	}
	if res.Duplicate {
		// A retry of a command that landed: its secret was shown to the
		// first attempt and cannot be shown again.
		return "", res, domain.Conflictf("token %s was already issued to an earlier attempt of this request; its secret is shown only once", id)
	}
	return secret, res, nil
}

// defaultProject is the project a login without one acts in.
func defaultProject(u user.State) (string, error) {
	if _, ok := u.Roles[AdminProjectID()]; ok {
		return AdminProjectID(), nil
	}
	if len(u.Roles) == 1 {
		for p := range u.Roles {
			return p, nil
		}
	}
	if len(u.Roles) == 0 {
		return "", &AuthError{Msg: "user " + u.Name + " has no role in any project; ask an admin for one"}
	}
	return "", domain.Invalidf("user %s has roles in %d projects: name the one to act in (project)", u.Name, len(u.Roles))
}

// Authenticate turns a bearer token into the principal it stands for. A
// token is checked against its own stream, the user's and the project's
// (cached, checked again after a second), so a revoked token, a deleted
// user or a withdrawn role stops working at once on the replica that made
// the change and within a second on the others.
func (a *App) Authenticate(ctx context.Context, secret string) (Principal, error) {
	id, ok := tokenID(secret)
	if !ok {
		return Principal{}, &AuthError{Msg: "malformed token: expected kt.<id>.<secret> as given by POST /v1/tokens"}
	}
	t, _, err := a.Tokens.Load(ctx, id)
	if err != nil {
		return Principal{}, err
	}
	invalid := &AuthError{Msg: "invalid token"}
	if !t.Exists || subtle.ConstantTimeCompare([]byte(secretHash(secret)), []byte(t.Spec.SecretSHA256)) != 1 {
		return Principal{}, invalid
	}
	now := a.Now().UTC()
	switch {
	case t.Revoked:
		return Principal{}, &AuthError{Msg: "token revoked"}
	case !t.ValidAt(now):
		return Principal{}, &AuthError{Msg: "token expired; log in again"}
	}
	u, _, err := a.Users.Load(ctx, t.Spec.User)
	if err != nil {
		return Principal{}, err
	}
	role, ok := u.Roles[t.Spec.Project]
	if !u.Live() || !ok {
		return Principal{}, &AuthError{Msg: "token no longer valid: its user or role is gone"}
	}
	pr, _, err := a.Projects.Load(ctx, t.Spec.Project)
	if err != nil {
		return Principal{}, err
	}
	if !pr.Live() {
		return Principal{}, &AuthError{Msg: "token no longer valid: its project is gone"}
	}
	p := Principal{UserID: string(u.ID), UserName: u.Name, TokenID: id, Project: t.Spec.Project, Role: role,
		ReadOnly: t.Spec.ReadOnly, ExpiresAt: t.Spec.ExpiresAt}
	if p.ReadOnly {
		p.Role = user.Reader
	}
	p.CloudAdmin = p.Project == AdminProjectID() && p.Role == user.Admin
	return p, nil
}

// RevokeToken ends a token. Users revoke their own; cloud admins any.
func (a *App) RevokeToken(ctx context.Context, p Principal, id string, meta Meta) (Result[token.State], error) {
	t, _, err := a.Tokens.LoadLatest(ctx, id)
	if err != nil {
		return Result[token.State]{}, err
	}
	if !t.Exists || (!p.CloudAdmin && t.Spec.User != p.UserID) {
		return Result[token.State]{}, domain.NotFoundf("token %s not found", id)
	}
	return a.Tokens.Handle(ctx, id, token.Revoke{At: a.Now().UTC()}, meta)
}

// CreateProject reserves a project's name and records it.
func (a *App) CreateProject(ctx context.Context, name, description string, meta Meta) (Result[project.State], error) {
	if err := domain.CheckName("name", name); err != nil {
		return Result[project.State]{}, err
	}
	id := DeriveID(meta.CommandID, "project")
	if err := a.reserveName(ctx, KindProject, "", name, id); err != nil {
		return Result[project.State]{}, err
	}
	return a.Projects.Create(ctx, id, project.Create{ID: project.ID(id), Name: name, Description: description, At: a.Now().UTC()}, meta)
}

// DeleteProject deletes a project and frees its name. The caller checks
// that it holds no resources.
func (a *App) DeleteProject(ctx context.Context, id string, meta Meta) (Result[project.State], error) {
	res, err := a.Projects.Handle(ctx, id, project.Delete{At: a.Now().UTC()}, meta)
	if err == nil {
		a.releaseName(context.WithoutCancel(ctx), KindProject, "", res.State.Name, id)
		err = a.deleteDefaultSecurityGroup(context.WithoutCancel(ctx), id, meta)
	}
	return res, err
}

// deleteDefaultSecurityGroup deletes a deleted project's default group,
// if it has one.
func (a *App) deleteDefaultSecurityGroup(ctx context.Context, projectID string, meta Meta) error {
	gid := DefaultSecurityGroupID(projectID)
	st, _, err := a.SecurityGroups.LoadLatest(ctx, gid)
	if err != nil || !st.Live() {
		return err
	}
	m := meta
	m.CommandID, m.Scope = meta.CommandID+"/default-security-group", ""
	if _, err := a.SecurityGroups.Handle(ctx, gid, secgroup.Delete{ProjectDeleted: true, At: a.Now().UTC()}, m); err != nil {
		return fmt.Errorf("project %s is deleted, but its default security group %s is left: %w", projectID, gid, err)
	}
	return nil
}

// CreateUser reserves a user's name and records the user with a hash of
// the password.
func (a *App) CreateUser(ctx context.Context, name, password string, meta Meta) (Result[user.State], error) {
	if err := domain.CheckName("name", name); err != nil {
		return Result[user.State]{}, err
	}
	if err := checkNewPassword(password); err != nil {
		return Result[user.State]{}, err
	}
	hash, err := HashPassword(password)
	if err != nil {
		return Result[user.State]{}, err
	}
	id := DeriveID(meta.CommandID, "user")
	if err := a.reserveName(ctx, KindUser, "", name, id); err != nil {
		return Result[user.State]{}, err
	}
	return a.Users.Create(ctx, id, user.Create{ID: user.ID(id), Name: name, PasswordHash: hash, At: a.Now().UTC()}, meta)
}

// SetPassword changes a user's password.
func (a *App) SetPassword(ctx context.Context, id, password string, meta Meta) (Result[user.State], error) {
	if err := checkNewPassword(password); err != nil {
		return Result[user.State]{}, err
	}
	hash, err := HashPassword(password)
	if err != nil {
		return Result[user.State]{}, err
	}
	return a.Users.Handle(ctx, id, user.SetPassword{PasswordHash: hash, At: a.Now().UTC()}, meta)
}

// DeleteUser deletes a user (their tokens stop working) and frees the name.
func (a *App) DeleteUser(ctx context.Context, id string, meta Meta) (Result[user.State], error) {
	res, err := a.Users.Handle(ctx, id, user.Delete{At: a.Now().UTC()}, meta)
	if err == nil {
		a.releaseName(context.WithoutCancel(ctx), KindUser, "", res.State.Name, id)
	}
	return res, err
}

// GrantRole gives a user a role in a live project.
func (a *App) GrantRole(ctx context.Context, userID, projectID string, role user.Role, meta Meta) (Result[user.State], error) {
	pr, _, err := a.Projects.LoadLatest(ctx, projectID)
	if err != nil {
		return Result[user.State]{}, err
	}
	if !pr.Live() {
		return Result[user.State]{}, domain.NotFoundf("project %s not found", projectID)
	}
	return a.Users.Handle(ctx, userID, user.Grant{Project: projectID, Role: role, At: a.Now().UTC()}, meta)
}

// RevokeRole takes a user's role in a project away.
func (a *App) RevokeRole(ctx context.Context, userID, projectID string, meta Meta) (Result[user.State], error) {
	if userID == AdminUserID() && projectID == AdminProjectID() {
		return Result[user.State]{}, domain.Conflictf("the admin user keeps the admin role in the admin project")
	}
	return a.Users.Handle(ctx, userID, user.Revoke{Project: projectID, At: a.Now().UTC()}, meta)
}

// IsAuthError reports whether err refuses credentials.
func IsAuthError(err error) bool {
	var ae *AuthError
	return errors.As(err, &ae)
}
