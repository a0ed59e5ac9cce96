package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Project as read.
type Project struct {
	ID          string
	Name        string
	Description string
	CreatedAt   time.Time
}

// ProjectFilter filters the project list: with Member set, only the
// projects that user has a role in.
type ProjectFilter struct {
	Name, Member string
}

const projectCols = `SELECT id::text, name, description, created_at FROM projects`

// Projects lists projects.
func (r *ReadModel) Projects(ctx context.Context, f ProjectFilter, p Page) ([]Project, string, error) {
	w := &where{}
	if f.Name != "" {
		w.add("name = ?", f.Name)
	}
	if f.Member != "" {
		w.add("id IN (SELECT project_id FROM role_assignments WHERE user_id = ?::uuid)", f.Member)
	}
	return list(ctx, r.Pool, projectCols, w, p, "created_at", pgx.RowToStructByPos[Project],
		func(p Project) (time.Time, string) { return p.CreatedAt, p.ID })
}

// Project returns one project.
func (r *ReadModel) Project(ctx context.Context, id string) (Project, error) {
	return one(ctx, r.Pool, projectCols+` WHERE id = $1::uuid`, pgx.RowToStructByPos[Project], id)
}

// Holding is how many of one kind of resource a project still owns.
type Holding struct {
	Kind string
	N    int
}

// ProjectHolds counts what a project still owns, by kind, in a fixed order
// (servers, keypairs, server groups, images, networks, subnets, ports,
// security groups but its default one, which goes with it, routers,
// floating IPs), leaving out the kinds it owns none of, for a delete to
// refuse.
func (r *ReadModel) ProjectHolds(ctx context.Context, id string) ([]Holding, error) {
	var out []Holding
	for _, h := range []struct{ kind, table, also string }{
		{"servers", "servers", ""}, {"keypairs", "keypairs", ""}, {"server groups", "server_groups", ""}, {"images", "images", ""},
		{"networks", "networks", ""}, {"subnets", "subnets", ""}, {"ports", "ports", ""},
		{"security groups", "security_groups", " AND NOT is_default"}, {"routers", "routers", ""}, {"floating IPs", "floating_ips", ""},
	} {
		kind, q := h.kind, `SELECT count(*) FROM `+h.table+` WHERE project_id = $1::uuid`+h.also
		var n int
		if err := r.Pool.QueryRow(ctx, q, id).Scan(&n); err != nil {
			return nil, fmt.Errorf("count %s of project %s: %w", kind, id, err)
		}
		if n > 0 {
			out = append(out, Holding{Kind: kind, N: n})
		}
	}
	return out, nil
}

// RoleAssignment is a user's role in a project.
type RoleAssignment struct {
	UserID    string
	UserName  string
	ProjectID string
	Role      string
	GrantedAt time.Time
}

const roleCols = `SELECT r.user_id::text, u.name, r.project_id::text, r.role, r.granted_at FROM role_assignments r JOIN users u ON u.id = r.user_id`

// Members lists the role assignments of a project, by user name (every
// one: a project has few members).
func (r *ReadModel) Members(ctx context.Context, projectID string) ([]RoleAssignment, error) {
	rows, err := r.Pool.Query(ctx, roleCols+` WHERE r.project_id = $1::uuid ORDER BY u.name LIMIT 10000`, projectID)
	if err != nil {
		return nil, fmt.Errorf("query members: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[RoleAssignment])
}

// User as read, with its roles.
type User struct {
	ID        string
	Name      string
	CreatedAt time.Time
	Roles     []RoleAssignment
}

// UserFilter filters the user list.
type UserFilter struct{ Name string }

func (r *ReadModel) withRoles(ctx context.Context, us []User) error {
	if len(us) == 0 {
		return nil
	}
	ids := make([]string, len(us))
	at := map[string]int{}
	for i, u := range us {
		ids[i], at[u.ID] = u.ID, i
		us[i].Roles = []RoleAssignment{}
	}
	rows, err := r.Pool.Query(ctx, roleCols+` WHERE r.user_id = ANY($1::uuid[]) ORDER BY r.project_id`, ids)
	if err != nil {
		return fmt.Errorf("query roles: %w", err)
	}
	roles, err := pgx.CollectRows(rows, pgx.RowToStructByPos[RoleAssignment])
	if err != nil {
		return fmt.Errorf("query roles: %w", err)
	}
	for _, ra := range roles {
		i := at[ra.UserID]
		us[i].Roles = append(us[i].Roles, ra)
	}
	return nil
}

// Users lists users with their roles.
func (r *ReadModel) Users(ctx context.Context, f UserFilter, p Page) ([]User, string, error) {
	w := &where{}
	if f.Name != "" {
		w.add("name = ?", f.Name)
	}
	scan := func(row pgx.CollectableRow) (User, error) {
		var u User
		return u, row.Scan(&u.ID, &u.Name, &u.CreatedAt)
	}
	us, next, err := list(ctx, r.Pool, `SELECT id::text, name, created_at FROM users`, w, p, "created_at", scan,
		func(u User) (time.Time, string) { return u.CreatedAt, u.ID })
	if err != nil {
		return nil, "", err
	}
	return us, next, r.withRoles(ctx, us)
}

// User returns one user with their roles.
func (r *ReadModel) User(ctx context.Context, id string) (User, error) {
	u, err := one(ctx, r.Pool, `SELECT id::text, name, created_at FROM users WHERE id = $1::uuid`, func(row pgx.CollectableRow) (User, error) {
		var u User
		return u, row.Scan(&u.ID, &u.Name, &u.CreatedAt)
	}, id)
	if err != nil {
		return u, err
	}
	us := []User{u}
	err = r.withRoles(ctx, us)
	return us[0], err
}

// Token as listed: never its secret.
type Token struct {
	ID        string
	UserID    string
	ProjectID string
	Name      string
	ReadOnly  bool
	CreatedAt time.Time
	ExpiresAt time.Time
	RevokedAt *time.Time
}

// TokenFilter filters the token list: User "" lists every user's (admins).
type TokenFilter struct {
	User string
	// Live leaves out revoked and expired tokens.
	Live bool
}

// Tokens lists tokens.
func (r *ReadModel) Tokens(ctx context.Context, f TokenFilter, p Page) ([]Token, string, error) {
	w := &where{}
	if f.User != "" {
		w.add("user_id = ?::uuid", f.User)
	}
	if f.Live {
		w.add("revoked_at IS NULL AND expires_at > ?", time.Now())
	}
	return list(ctx, r.Pool, `SELECT id::text, user_id::text, project_id::text, name, read_only, created_at, expires_at, revoked_at FROM tokens`, w, p, "created_at",
		pgx.RowToStructByPos[Token], func(t Token) (time.Time, string) { return t.CreatedAt, t.ID })
}

// Token returns one token.
func (r *ReadModel) Token(ctx context.Context, id string) (Token, error) {
	return one(ctx, r.Pool, `SELECT id::text, user_id::text, project_id::text, name, read_only, created_at, expires_at, revoked_at FROM tokens WHERE id = $1::uuid`,
		pgx.RowToStructByPos[Token], id)
}
