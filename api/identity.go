package api

import (
	"context"
	"time"
)

// TokenBody asks for a token. Without an Authorization header it is a
// password login (user and password); with one, it issues the caller
// another token (for a script), limited as asked.
type TokenBody struct {
	User     string `json:"user,omitempty" maxLength:"255" doc:"User name (password login)"`
	Password string `json:"password,omitempty" maxLength:"1024" doc:"Password (password login)"`
	Project  string `json:"project,omitempty" maxLength:"255" doc:"Project id or name to act in; default: the admin project for its admins, else the user's only project"`
	Name     string `json:"name,omitempty" maxLength:"255" doc:"What the token is for (default: login)"`
	// ExpiresIn is the token's lifetime in seconds.
	ExpiresIn int  `json:"expires_in,omitempty" minimum:"0" maximum:"31622400" doc:"Lifetime in seconds (default 12 hours; at most 366 days)"`
	ReadOnly  bool `json:"read_only,omitempty" doc:"The token may only read, whatever the user's role"`
}

// Token is a token as listed: never its secret.
type Token struct {
	ID        string     `json:"id" format:"uuid"`
	UserID    string     `json:"user_id" format:"uuid"`
	ProjectID string     `json:"project_id" format:"uuid"`
	Name      string     `json:"name"`
	ReadOnly  bool       `json:"read_only"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	RevokedAt *time.Time `json:"revoked_at"`
}

// IssuedToken is a new token with its secret, shown this once.
type IssuedToken struct {
	Token
	Secret string `json:"token" doc:"Send it as Authorization: Bearer <token>. Shown once; Keel keeps only its SHA-256"`
}

// Whoami is the caller as the API sees them.
type Whoami struct {
	UserID     string    `json:"user_id" format:"uuid"`
	UserName   string    `json:"user_name"`
	ProjectID  string    `json:"project_id" format:"uuid"`
	Role       string    `json:"role" enum:"reader,member,admin"`
	CloudAdmin bool      `json:"cloud_admin" doc:"An admin of the admin project: may act on every project"`
	ReadOnly   bool      `json:"read_only"`
	TokenID    string    `json:"token_id" format:"uuid"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// ProjectBody is a project to create.
type ProjectBody struct {
	Name        string `json:"name" minLength:"1" maxLength:"255" doc:"Unique name"`
	Description string `json:"description,omitempty" maxLength:"1024"`
}

// Project is a tenant: it owns servers, keypairs, server groups and
// private images.
type Project struct {
	ID          string    `json:"id" format:"uuid"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
}

// MemberBody gives a user a role in a project.
type MemberBody struct {
	Role string `json:"role" enum:"reader,member,admin" doc:"reader reads; member also changes; admin also manages members"`
}

// Member is a user's role in a project.
type Member struct {
	UserID    string    `json:"user_id" format:"uuid"`
	UserName  string    `json:"user_name"`
	ProjectID string    `json:"project_id" format:"uuid"`
	Role      string    `json:"role" enum:"reader,member,admin"`
	GrantedAt time.Time `json:"granted_at"`
}

// MemberList lists a project's members (not paged).
type MemberList struct {
	Items []Member `json:"items"`
}

// UserBody is a user to create.
type UserBody struct {
	Name     string `json:"name" minLength:"1" maxLength:"255" doc:"Unique name, used to log in"`
	Password string `json:"password" minLength:"12" maxLength:"1024" doc:"At least 12 characters; kept as an argon2id hash"`
	Project  string `json:"project,omitempty" maxLength:"255" doc:"A project (id or name) to give the user a role in"`
	Role     string `json:"role,omitempty" enum:"reader,member,admin" doc:"The role in project (default member)"`
}

// PasswordBody changes a password.
type PasswordBody struct {
	Current  string `json:"current_password,omitempty" maxLength:"1024" doc:"The present password (required when changing one's own)"`
	Password string `json:"password" minLength:"12" maxLength:"1024"`
}

// User is a user with their roles.
type User struct {
	ID        string    `json:"id" format:"uuid"`
	Name      string    `json:"name"`
	Roles     []Member  `json:"roles"`
	CreatedAt time.Time `json:"created_at"`
}

// Login logs in with a password and returns a client that sends the new
// token.
func Login(ctx context.Context, c *Client, user, password, project string) (*Client, IssuedToken, error) {
	t, _, err := Create[IssuedToken](ctx, c.WithToken(""), Tokens, TokenBody{User: user, Password: password, Project: project}, Opts{})
	if err != nil {
		return nil, t, err
	}
	return c.WithToken(t.Secret), t, nil
}

// QuotasBody changes a project's limits: resource → limit, -1 for none.
type QuotasBody struct {
	Limits map[string]int `json:"limits" doc:"By resource (servers, vcpus, ram_mib, volumes, volume_gib, networks, ports, floating_ips, security_groups, routers): the limit, or -1 for none. Resources not named keep theirs."`
}

// Quota is one resource's limit and use.
type Quota struct {
	Resource string `json:"resource"`
	Limit    *int   `json:"limit" doc:"null: no limit"`
	InUse    int    `json:"in_use" doc:"What the project's resources hold now, reservations included"`
}

// Quotas are a project's limits and use.
type Quotas struct {
	ProjectID string  `json:"project_id" format:"uuid"`
	Items     []Quota `json:"items"`
	Version   int64   `json:"version" doc:"The project's aggregate version"`
}
