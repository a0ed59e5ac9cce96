// Package project is the project aggregate: the tenant that owns servers,
// keypairs, server groups, private images and operations. Users hold roles
// in projects (package user); every request acts within one project.
//
// The project named "admin" is made on first start; a user with the admin
// role in it is a cloud admin (see docs/decisions.md, ADR 20).
package project

import (
	"time"

	"github.com/keel-cloud/keel/domain"
)

// AggregateType names the project stream subjects.
const AggregateType = "project"

// ID identifies a project (a UUID in canonical form).
type ID string

// AdminName is the name of the project whose admins are cloud admins.
const AdminName = "admin"

// MaxDescription bounds a description in bytes.
const MaxDescription = 1024

// State is what the decider knows about one project.
type State struct {
	ID          ID
	Exists      bool
	Deleted     bool
	Name        string
	Description string
	CreatedAt   time.Time
}

// Live reports whether the project exists and is not deleted.
func (s State) Live() bool { return s.Exists && !s.Deleted }

// Command is one of the commands below.
type Command interface{ projectCommand() }

// Create records a new project.
type Create struct {
	ID          ID
	Name        string
	Description string
	At          time.Time
}

// Delete removes a project. The admin project cannot be deleted.
type Delete struct{ At time.Time }

func (Create) projectCommand() {}
func (Delete) projectCommand() {}

// Event type names. Never rename or reuse one.
const (
	TypeCreated = "project.created"
	TypeDeleted = "project.deleted"
)

// Created records a new project.
type Created struct {
	ID          ID        `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

// Deleted records that a project was removed.
type Deleted struct {
	ID        ID        `json:"id"`
	DeletedAt time.Time `json:"deleted_at"`
}

// EventType implements domain.Event.
func (*Created) EventType() string { return TypeCreated }

// EventType implements domain.Event.
func (*Deleted) EventType() string { return TypeDeleted }

// Decider is the project aggregate's behaviour.
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

// Decide returns the events a command produces.
func Decide(s State, c Command) ([]domain.Event, error) {
	switch c := c.(type) {
	case Create:
		if s.Exists {
			return nil, domain.Conflictf("project %s already exists", s.ID)
		}
		if err := domain.CheckName("name", c.Name); err != nil {
			return nil, err
		}
		if err := domain.CheckTextUpTo("description", c.Description, MaxDescription); err != nil {
			return nil, err
		}
		return []domain.Event{&Created{ID: c.ID, Name: c.Name, Description: c.Description, CreatedAt: c.At}}, nil
	case Delete:
		if !s.Live() {
			return nil, domain.NotFoundf("project %s not found", s.ID)
		}
		if s.Name == AdminName {
			return nil, domain.Conflictf("the %s project cannot be deleted: its admins are the cloud's admins", AdminName)
		}
		return []domain.Event{&Deleted{ID: s.ID, DeletedAt: c.At}}, nil
	default:
		return nil, domain.Invalidf("project: unknown command %T", c)
	}
}

// Evolve folds one event into the state.
func Evolve(s State, ev domain.Event) State {
	switch e := ev.(type) {
	case *Created:
		s.ID, s.Exists, s.Name, s.Description, s.CreatedAt = e.ID, true, e.Name, e.Description, e.CreatedAt
	case *Deleted:
		s.Deleted = true
	}
	return s
}
