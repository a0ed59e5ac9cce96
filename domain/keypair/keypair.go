// Package keypair is the keypair aggregate: a named SSH public key that
// servers are created with (key_name). Keel never makes or holds the
// private half. A keypair is immutable once created; it can only be
// deleted. Servers keep a copy of the public key they were created with,
// so deleting a keypair never changes a server's first boot.
//
// The key is parsed and normalised before it reaches the decider (package
// sshkey, which needs a crypto library domain/ must not import); the
// decider checks what a pure function can: the name, the size and the
// characters of the key, and that a fingerprint came with it.
package keypair

import (
	"strings"
	"time"

	"github.com/keel-cloud/keel/domain"
)

// AggregateType names the keypair stream subjects.
const AggregateType = "keypair"

// ID identifies a keypair (a UUID in canonical form).
type ID string

// MaxPublicKey bounds a public key in bytes (16 KiB).
const MaxPublicKey = 16 << 10

// State is what the decider knows about one keypair.
type State struct {
	ID        ID
	Exists    bool
	Deleted   bool
	Spec      Spec
	CreatedAt time.Time
}

// Spec is the keypair's name and its public key, normalised.
type Spec struct {
	// Project owns the keypair; names are unique within it.
	Project string `json:"project_id,omitempty"`
	Name    string `json:"name"`
	// Type is the key's algorithm, e.g. ssh-ed25519.
	Type string `json:"type"`
	// PublicKey is one authorized_keys line: type, base64, comment.
	PublicKey string `json:"public_key"`
	// Fingerprint is "SHA256:..." as ssh-keygen -lf prints it.
	Fingerprint string `json:"fingerprint"`
}

// Command is one of the commands below.
type Command interface{ keypairCommand() }

// Create records a new keypair.
type Create struct {
	ID   ID
	Spec Spec
	At   time.Time
}

// Delete removes a keypair.
type Delete struct{ At time.Time }

func (Create) keypairCommand() {}
func (Delete) keypairCommand() {}

// Event type names. Never rename or reuse one.
const (
	TypeCreated = "keypair.created"
	TypeDeleted = "keypair.deleted"
)

// Created records a new keypair.
type Created struct {
	ID        ID        `json:"id"`
	Spec      Spec      `json:"spec"`
	CreatedAt time.Time `json:"created_at"`
}

// Deleted records that a keypair was removed.
type Deleted struct {
	ID        ID        `json:"id"`
	DeletedAt time.Time `json:"deleted_at"`
}

// EventType implements domain.Event.
func (*Created) EventType() string { return TypeCreated }

// EventType implements domain.Event.
func (*Deleted) EventType() string { return TypeDeleted }

// Decider is the keypair aggregate's behaviour.
var Decider = domain.Decider[State, Command]{
	Type:   AggregateType,
	Decide: Decide,
	Evolve: Evolve,
	Init:   func(id string) State { return State{ID: ID(id)} },
	Registry: domain.Registry{
		TypeCreated: func() domain.Event { return &Created{} },
		TypeDeleted: func() domain.Event { return &Deleted{} },
	},
}

// Validate checks a keypair spec.
func (s Spec) Validate() error {
	if err := domain.CheckName("name", s.Name); err != nil {
		return err
	}
	if s.PublicKey == "" {
		return domain.Invalidf("public_key must not be empty")
	}
	if err := domain.CheckTextUpTo("public_key", s.PublicKey, MaxPublicKey); err != nil {
		return err
	}
	if !strings.HasPrefix(s.PublicKey, s.Type+" ") || s.Type == "" {
		return domain.Invalidf("public_key must begin with its type %q", s.Type)
	}
	if !strings.HasPrefix(s.Fingerprint, "SHA256:") {
		return domain.Invalidf("fingerprint must be a SHA256 fingerprint, got %q", s.Fingerprint)
	}
	return nil
}

// Decide returns the events a command produces.
func Decide(s State, c Command) ([]domain.Event, error) {
	switch c := c.(type) {
	case Create:
		if s.Exists {
			return nil, domain.Conflictf("keypair %s already exists", s.ID)
		}
		if err := c.Spec.Validate(); err != nil {
			return nil, err
		}
		return []domain.Event{&Created{ID: c.ID, Spec: c.Spec, CreatedAt: c.At}}, nil
	case Delete:
		if !s.Exists || s.Deleted {
			return nil, domain.NotFoundf("keypair %s not found", s.ID)
		}
		return []domain.Event{&Deleted{ID: s.ID, DeletedAt: c.At}}, nil
	default:
		return nil, domain.Invalidf("keypair: unknown command %T", c)
	}
}

// Evolve folds one event into the state.
func Evolve(s State, ev domain.Event) State {
	switch e := ev.(type) {
	case *Created:
		s.ID, s.Exists, s.Spec, s.CreatedAt = e.ID, true, e.Spec, e.CreatedAt
	case *Deleted:
		s.Deleted = true
	}
	return s
}
