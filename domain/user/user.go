// Package user is the user aggregate: a person (or a script) who logs in
// with a password and holds one role per project. The password reaches the
// decider hashed (argon2id, made by the commands layer); no event carries
// it in clear.
package user

import (
	"maps"
	"strings"
	"time"

	"github.com/keel-cloud/keel/domain"
)

// AggregateType names the user stream subjects.
const AggregateType = "user"

// ID identifies a user (a UUID in canonical form).
type ID string

// Role is what a user may do in a project.
type Role string

// Roles, weakest first.
const (
	// Reader reads the project's resources.
	Reader Role = "reader"
	// Member reads and changes them.
	Member Role = "member"
	// Admin also manages who has a role in the project. An admin of the
	// admin project is a cloud admin.
	Admin Role = "admin"
)

// Roles lists every role, weakest first.
var Roles = []Role{Reader, Member, Admin}

// Rank orders roles: 0 for none, then reader, member, admin.
func (r Role) Rank() int {
	switch r {
	case Reader:
		return 1
	case Member:
		return 2
	case Admin:
		return 3
	}
	return 0
}

// AdminName is the bootstrap cloud admin made on first start.
const AdminName = "admin"

// State is what the decider knows about one user.
type State struct {
	ID           ID
	Exists       bool
	Deleted      bool
	Name         string
	PasswordHash string
	// Roles maps a project id to the user's role in it.
	Roles     map[string]Role
	CreatedAt time.Time
}

// Live reports whether the user exists and is not deleted.
func (s State) Live() bool { return s.Exists && !s.Deleted }

// Command is one of the commands below.
type Command interface{ userCommand() }

// Create records a new user.
type Create struct {
	ID           ID
	Name         string
	PasswordHash string
	At           time.Time
}

// SetPassword replaces the user's password hash.
type SetPassword struct {
	PasswordHash string
	At           time.Time
}

// Grant gives the user a role in a project, replacing any other role
// there. The caller checks that the project exists.
type Grant struct {
	Project string
	Role    Role
	At      time.Time
}

// Revoke takes the user's role in a project away.
type Revoke struct {
	Project string
	At      time.Time
}

// Delete removes the user; their tokens stop working.
type Delete struct{ At time.Time }

func (Create) userCommand()      {}
func (SetPassword) userCommand() {}
func (Grant) userCommand()       {}
func (Revoke) userCommand()      {}
func (Delete) userCommand()      {}

// Event type names. Never rename or reuse one.
const (
	TypeCreated         = "user.created"
	TypePasswordChanged = "user.password_changed"
	TypeRoleGranted     = "user.role_granted"
	TypeRoleRevoked     = "user.role_revoked"
	TypeDeleted         = "user.deleted"
)

// Created records a new user.
type Created struct {
	ID           ID        `json:"id"`
	Name         string    `json:"name"`
	PasswordHash string    `json:"password_hash"`
	CreatedAt    time.Time `json:"created_at"`
}

// PasswordChanged records a new password hash.
type PasswordChanged struct {
	ID           ID        `json:"id"`
	PasswordHash string    `json:"password_hash"`
	ChangedAt    time.Time `json:"changed_at"`
}

// RoleGranted records a role in a project.
type RoleGranted struct {
	ID      ID        `json:"id"`
	Project string    `json:"project_id"`
	Role    Role      `json:"role"`
	At      time.Time `json:"at"`
}

// RoleRevoked records that the user lost their role in a project.
type RoleRevoked struct {
	ID      ID        `json:"id"`
	Project string    `json:"project_id"`
	At      time.Time `json:"at"`
}

// Deleted records that a user was removed.
type Deleted struct {
	ID        ID        `json:"id"`
	DeletedAt time.Time `json:"deleted_at"`
}

// EventType implements domain.Event.
func (*Created) EventType() string { return TypeCreated }

// EventType implements domain.Event.
func (*PasswordChanged) EventType() string { return TypePasswordChanged }

// EventType implements domain.Event.
func (*RoleGranted) EventType() string { return TypeRoleGranted }

// EventType implements domain.Event.
func (*RoleRevoked) EventType() string { return TypeRoleRevoked }

// EventType implements domain.Event.
func (*Deleted) EventType() string { return TypeDeleted }

// Decider is the user aggregate's behaviour.
var Decider = domain.Decider[State, Command]{
	Type:   AggregateType,
	Decide: Decide,
	Evolve: Evolve,
	Init:   func(id string) State { return State{ID: ID(id)} },
	Registry: domain.Registry{
		TypeCreated:         func() domain.Event { return &Created{} },
		TypePasswordChanged: func() domain.Event { return &PasswordChanged{} },
		TypeRoleGranted:     func() domain.Event { return &RoleGranted{} },
		TypeRoleRevoked:     func() domain.Event { return &RoleRevoked{} },
		TypeDeleted:         func() domain.Event { return &Deleted{} },
	},
}

// checkHash accepts a PHC-format argon2id hash, never a clear password.
func checkHash(h string) error {
	if !strings.HasPrefix(h, "$argon2id$") || len(h) > 256 {
		return domain.Invalidf("password_hash must be an argon2id hash")
	}
	return nil
}

// Decide returns the events a command produces.
func Decide(s State, c Command) ([]domain.Event, error) {
	if _, ok := c.(Create); !ok && !s.Live() {
		return nil, domain.NotFoundf("user %s not found", s.ID)
	}
	switch c := c.(type) {
	case Create:
		if s.Exists {
			return nil, domain.Conflictf("user %s already exists", s.ID)
		}
		if err := domain.CheckName("name", c.Name); err != nil {
			return nil, err
		}
		if err := checkHash(c.PasswordHash); err != nil {
			return nil, err
		}
		return []domain.Event{&Created{ID: c.ID, Name: c.Name, PasswordHash: c.PasswordHash, CreatedAt: c.At}}, nil
	case SetPassword:
		if err := checkHash(c.PasswordHash); err != nil {
			return nil, err
		}
		return []domain.Event{&PasswordChanged{ID: s.ID, PasswordHash: c.PasswordHash, ChangedAt: c.At}}, nil
	case Grant:
		if c.Role.Rank() == 0 {
			return nil, domain.Invalidf("role must be one of reader, member, admin, not %q", c.Role)
		}
		if c.Project == "" {
			return nil, domain.Invalidf("a role needs a project")
		}
		if s.Roles[c.Project] == c.Role {
			return nil, nil
		}
		return []domain.Event{&RoleGranted{ID: s.ID, Project: c.Project, Role: c.Role, At: c.At}}, nil
	case Revoke:
		if _, ok := s.Roles[c.Project]; !ok {
			return nil, domain.NotFoundf("user %s has no role in project %s", s.Name, c.Project)
		}
		return []domain.Event{&RoleRevoked{ID: s.ID, Project: c.Project, At: c.At}}, nil
	case Delete:
		if s.Name == AdminName {
			return nil, domain.Conflictf("the %s user cannot be deleted; give another user the admin role first and keep this one", AdminName)
		}
		return []domain.Event{&Deleted{ID: s.ID, DeletedAt: c.At}}, nil
	default:
		return nil, domain.Invalidf("user: unknown command %T", c)
	}
}

// Evolve folds one event into the state.
func Evolve(s State, ev domain.Event) State {
	switch e := ev.(type) {
	case *Created:
		s.ID, s.Exists, s.Name, s.PasswordHash, s.CreatedAt = e.ID, true, e.Name, e.PasswordHash, e.CreatedAt
	case *PasswordChanged:
		s.PasswordHash = e.PasswordHash
	case *RoleGranted:
		s.Roles = maps.Clone(s.Roles)
		if s.Roles == nil {
			s.Roles = map[string]Role{}
		}
		s.Roles[e.Project] = e.Role
	case *RoleRevoked:
		s.Roles = maps.Clone(s.Roles)
		delete(s.Roles, e.Project)
	case *Deleted:
		s.Deleted = true
	}
	return s
}
