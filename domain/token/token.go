// Package token is the API token aggregate. A token belongs to a user, acts
// in one project, expires, can be revoked, and can be limited to reading.
// Only the SHA-256 of its secret is recorded; the secret is shown once, to
// whoever asked for it.
package token

import (
	"time"

	"github.com/keel-cloud/keel/domain"
)

// AggregateType names the token stream subjects.
const AggregateType = "token"

// ID identifies a token (a UUID in canonical form).
type ID string

// MaxLifetime bounds how long a token may live.
const MaxLifetime = 366 * 24 * time.Hour

// State is what the decider knows about one token.
type State struct {
	ID        ID
	Exists    bool
	Spec      Spec
	CreatedAt time.Time
	Revoked   bool
	RevokedAt time.Time
}

// Spec is what a token is issued with.
type Spec struct {
	User    string `json:"user_id"`
	Project string `json:"project_id"`
	// Name says what the token is for ("login" for a password login).
	Name string `json:"name"`
	// ReadOnly limits the token to reading, whatever the user's role.
	ReadOnly bool `json:"read_only,omitempty"`
	// SecretSHA256 is the hex SHA-256 of the token's secret.
	SecretSHA256 string    `json:"secret_sha256"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// ValidAt reports whether the token may be used at t.
func (s State) ValidAt(t time.Time) bool {
	return s.Exists && !s.Revoked && t.Before(s.Spec.ExpiresAt)
}

// Command is one of the commands below.
type Command interface{ tokenCommand() }

// Issue records a new token.
type Issue struct {
	ID   ID
	Spec Spec
	At   time.Time
}

// Revoke ends a token before its expiry.
type Revoke struct{ At time.Time }

func (Issue) tokenCommand()  {}
func (Revoke) tokenCommand() {}

// Event type names. Never rename or reuse one.
const (
	TypeIssued  = "token.issued"
	TypeRevoked = "token.revoked"
)

// Issued records a new token.
type Issued struct {
	ID        ID        `json:"id"`
	Spec      Spec      `json:"spec"`
	CreatedAt time.Time `json:"created_at"`
}

// Revoked records that a token was revoked.
type Revoked struct {
	ID        ID        `json:"id"`
	RevokedAt time.Time `json:"revoked_at"`
}

// EventType implements domain.Event.
func (*Issued) EventType() string { return TypeIssued }

// EventType implements domain.Event.
func (*Revoked) EventType() string { return TypeRevoked }

// Decider is the token aggregate's behaviour.
var Decider = domain.Decider[State, Command]{
	Type:   AggregateType,
	Decide: Decide,
	Evolve: Evolve,
	Init:   func(id string) State { return State{ID: ID(id)} },
	Registry: domain.Registry{
		TypeIssued:  func() domain.Event { return &Issued{} },
		TypeRevoked: func() domain.Event { return &Revoked{} },
	},
}

func isHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, r := range s {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}

// Decide returns the events a command produces.
func Decide(s State, c Command) ([]domain.Event, error) {
	switch c := c.(type) {
	case Issue:
		if s.Exists {
			return nil, domain.Conflictf("token %s already exists", s.ID)
		}
		sp := c.Spec
		if sp.User == "" || sp.Project == "" {
			return nil, domain.Invalidf("a token needs a user and a project")
		}
		if err := domain.CheckName("name", sp.Name); err != nil {
			return nil, err
		}
		if !isHexSHA256(sp.SecretSHA256) {
			return nil, domain.Invalidf("secret_sha256 must be 64 lowercase hex digits")
		}
		if !sp.ExpiresAt.After(c.At) {
			return nil, domain.Invalidf("a token must expire after it is issued")
		}
		if sp.ExpiresAt.Sub(c.At) > MaxLifetime {
			return nil, domain.Invalidf("a token may live at most %d days", int(MaxLifetime.Hours()/24))
		}
		return []domain.Event{&Issued{ID: c.ID, Spec: sp, CreatedAt: c.At}}, nil
	case Revoke:
		if !s.Exists {
			return nil, domain.NotFoundf("token %s not found", s.ID)
		}
		if s.Revoked {
			return nil, nil
		}
		return []domain.Event{&Revoked{ID: s.ID, RevokedAt: c.At}}, nil
	default:
		return nil, domain.Invalidf("token: unknown command %T", c)
	}
}

// Evolve folds one event into the state.
func Evolve(s State, ev domain.Event) State {
	switch e := ev.(type) {
	case *Issued:
		s.ID, s.Exists, s.Spec, s.CreatedAt = e.ID, true, e.Spec, e.CreatedAt
	case *Revoked:
		s.Revoked, s.RevokedAt = true, e.RevokedAt
	}
	return s
}
