// Package project is the project aggregate: the tenant that owns servers,
// keypairs, server groups, private images and operations. Users hold roles
// in projects (package user); every request acts within one project.
//
// The project named "admin" is made on first start; a user with the admin
// role in it is a cloud admin (see docs/decisions.md, ADR 20).
package project

import (
	"fmt"
	"maps"
	"slices"
	"strings"
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
	// Quotas are the limits by resource (QuotaResources); a resource
	// without one is unlimited.
	Quotas map[string]int
	// Used is what the project's reservations hold, by resource. The
	// reservations themselves are not kept (one per server would make each
	// commit of a big project cost its size): a retried reservation is
	// recognised by its command id, and a release names its amounts.
	Used map[string]int
}

// held names the resources the project's reservations hold ("2 servers,
// 1 networks"), counted resources only (not their vCPUs, RAM or GiB); ""
// when none.
func (s State) held() string {
	var out []string
	for _, r := range QuotaResources {
		if r == QuotaVCPUs || r == QuotaRAMMiB || r == QuotaVolumeGiB || s.Used[r] <= 0 {
			continue
		}
		out = append(out, fmt.Sprintf("%d %s", s.Used[r], r))
	}
	return strings.Join(out, ", ")
}

// ServerAmounts is what one server of a flavor of vcpus and ramMiB holds.
func ServerAmounts(vcpus, ramMiB int) map[string]int {
	return map[string]int{QuotaServers: 1, QuotaVCPUs: vcpus, QuotaRAMMiB: ramMiB}
}

// Quota resources. Servers, vCPUs and RAM are counted now; the others are
// ready for volumes, networks and floating IPs.
const (
	QuotaServers        = "servers"
	QuotaVCPUs          = "vcpus"
	QuotaRAMMiB         = "ram_mib"
	QuotaVolumes        = "volumes"
	QuotaVolumeGiB      = "volume_gib"
	QuotaNetworks       = "networks"
	QuotaPorts          = "ports"
	QuotaFloatingIPs    = "floating_ips"
	QuotaSecurityGroups = "security_groups"
	QuotaRouters        = "routers"
)

// QuotaResources lists every resource a quota may limit.
var QuotaResources = []string{QuotaServers, QuotaVCPUs, QuotaRAMMiB, QuotaVolumes, QuotaVolumeGiB, QuotaNetworks, QuotaPorts, QuotaFloatingIPs, QuotaSecurityGroups, QuotaRouters}

// DefaultLimits are the limits a new project starts with (Neutron's
// defaults): networking resources cost the cloud OVN rows whatever their
// use, so they are bounded from the start; compute and volumes stay
// unlimited until an operator sets them. A negative limit in SetQuotas
// removes a default too. Projects made before the defaults existed get
// them when their stream is read again: they are decided by the created
// event, not recorded in it.
var DefaultLimits = map[string]int{QuotaNetworks: 100, QuotaPorts: 500, QuotaSecurityGroups: 10, QuotaRouters: 10, QuotaFloatingIPs: 50}

// QuotaExceeded refuses a reservation past a limit.
type QuotaExceeded struct {
	Project, Resource    string
	Limit, Used, Request int
}

func (e *QuotaExceeded) Error() string {
	return fmt.Sprintf("quota exceeded: project %s uses %d of its %d %s and asks for %d more", e.Project, e.Used, e.Limit, e.Resource, e.Request)
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

// SetQuotas sets limits by resource; a negative limit removes it
// (unlimited). Lowering a limit below the use holds back new reservations
// only.
type SetQuotas struct {
	Limits map[string]int
	At     time.Time
}

// Reserve takes amounts by resource under a key (a server id), within the
// limits. A retry is recognised by its command id, not by the key.
type Reserve struct {
	Key     string
	Amounts map[string]int
	At      time.Time
}

// Release gives back what a reservation under Key took (Amounts). Use
// never goes below zero.
type Release struct {
	Key     string
	Amounts map[string]int
	At      time.Time
}

func (Create) projectCommand()    {}
func (Delete) projectCommand()    {}
func (SetQuotas) projectCommand() {}
func (Reserve) projectCommand()   {}
func (Release) projectCommand()   {}

// Event type names. Never rename or reuse one.
const (
	TypeCreated       = "project.created"
	TypeDeleted       = "project.deleted"
	TypeQuotasSet     = "project.quotas_set"
	TypeQuotaReserved = "project.quota_reserved"
	TypeQuotaReleased = "project.quota_released"
)

// QuotasSet records a project's limits (the whole set after the change).
type QuotasSet struct {
	Limits map[string]int `json:"limits"`
	At     time.Time      `json:"at"`
}

// QuotaReserved records amounts taken under a key.
type QuotaReserved struct {
	Key     string         `json:"key"`
	Amounts map[string]int `json:"amounts"`
	At      time.Time      `json:"at"`
}

// QuotaReleased records a reservation given back.
type QuotaReleased struct {
	Key     string         `json:"key"`
	Amounts map[string]int `json:"amounts"`
	At      time.Time      `json:"at"`
}

// EventType implements domain.Event.
func (*QuotasSet) EventType() string { return TypeQuotasSet }

// EventType implements domain.Event.
func (*QuotaReserved) EventType() string { return TypeQuotaReserved }

// EventType implements domain.Event.
func (*QuotaReleased) EventType() string { return TypeQuotaReleased }

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
		TypeCreated:       func() domain.Event { return &Created{} },
		TypeDeleted:       func() domain.Event { return &Deleted{} },
		TypeQuotasSet:     func() domain.Event { return &QuotasSet{} },
		TypeQuotaReserved: func() domain.Event { return &QuotaReserved{} },
		TypeQuotaReleased: func() domain.Event { return &QuotaReleased{} },
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
		// What its reservations hold is decided here, with the reservations
		// themselves: a create that reserved first keeps the project, and
		// one that comes after the delete is refused.
		if held := s.held(); held != "" {
			return nil, domain.Conflictf("project %s still holds %s; delete them first", s.Name, held)
		}
		return []domain.Event{&Deleted{ID: s.ID, DeletedAt: c.At}}, nil
	case SetQuotas:
		if !s.Live() {
			return nil, domain.NotFoundf("project %s not found", s.ID)
		}
		limits := maps.Clone(s.Quotas)
		if limits == nil {
			limits = map[string]int{}
		}
		for r, v := range c.Limits {
			if !slices.Contains(QuotaResources, r) {
				return nil, domain.Invalidf("no quota named %q: the quotas are %v", r, QuotaResources)
			}
			if v < 0 {
				delete(limits, r)
			} else {
				limits[r] = v
			}
		}
		if maps.Equal(limits, s.Quotas) {
			return nil, nil
		}
		return []domain.Event{&QuotasSet{Limits: limits, At: c.At}}, nil
	case Reserve:
		if !s.Live() {
			return nil, domain.NotFoundf("project %s not found", s.ID)
		}
		if c.Key == "" {
			return nil, domain.Invalidf("a reservation needs a key")
		}
		for _, r := range slices.Sorted(maps.Keys(c.Amounts)) {
			amount := c.Amounts[r]
			if !slices.Contains(QuotaResources, r) || amount < 0 {
				return nil, domain.Invalidf("cannot reserve %d %s", amount, r)
			}
			if limit, ok := s.Quotas[r]; ok && s.Used[r]+amount > limit {
				return nil, &domain.Error{Kind: domain.Conflict, Msg: (&QuotaExceeded{Project: s.Name, Resource: r, Limit: limit, Used: s.Used[r], Request: amount}).Error()}
			}
		}
		return []domain.Event{&QuotaReserved{Key: c.Key, Amounts: maps.Clone(c.Amounts), At: c.At}}, nil
	case Release:
		if c.Key == "" || len(c.Amounts) == 0 {
			return nil, domain.Invalidf("a release needs a key and amounts")
		}
		return []domain.Event{&QuotaReleased{Key: c.Key, Amounts: maps.Clone(c.Amounts), At: c.At}}, nil
	default:
		return nil, domain.Invalidf("project: unknown command %T", c)
	}
}

// Evolve folds one event into the state.
func Evolve(s State, ev domain.Event) State {
	switch e := ev.(type) {
	case *Created:
		s.ID, s.Exists, s.Name, s.Description, s.CreatedAt = e.ID, true, e.Name, e.Description, e.CreatedAt
		s.Quotas = maps.Clone(DefaultLimits)
	case *Deleted:
		s.Deleted = true
	case *QuotasSet:
		s.Quotas = maps.Clone(e.Limits)
	case *QuotaReserved:
		s.Used = maps.Clone(s.Used)
		if s.Used == nil {
			s.Used = map[string]int{}
		}
		for r, n := range e.Amounts {
			s.Used[r] += n
		}
	case *QuotaReleased:
		s.Used = maps.Clone(s.Used)
		for r, n := range e.Amounts {
			s.Used[r] = max(0, s.Used[r]-n)
		}
	}
	return s
}
