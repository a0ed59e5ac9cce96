// Package image is the image aggregate: a named disk image whose bytes live in
// the JetStream object store. An image is created empty (queued), becomes
// active once its bytes are uploaded and their sha256 recorded, and can be
// deleted. The bytes never pass through this package; it records facts only.
package image

import (
	"time"

	"github.com/keel-cloud/keel/domain"
)

// AggregateType names the image stream subjects.
const AggregateType = "image"

// ID identifies an image (a UUID in canonical form).
type ID string

// Status is the lifecycle state shown to users.
type Status string

// Image statuses.
const (
	Queued  Status = "queued"
	Active  Status = "active"
	Deleted Status = "deleted"
)

// Formats accepted for disk_format.
var Formats = []string{"raw", "qcow2", "iso"}

// Spec is what a user says about an image when creating it.
type Spec struct {
	// Project owns a private image; "" makes the image public (every
	// project may boot it; only cloud admins make or delete those).
	Project    string `json:"project_id,omitempty"`
	Name       string `json:"name"`
	DiskFormat string `json:"disk_format"`
	MinDiskGiB int    `json:"min_disk_gib"`
	MinRAMMiB  int    `json:"min_ram_mib"`
}

// State is what the decider knows about one image.
type State struct {
	ID                   ID
	Exists               bool
	Status               Status
	Spec                 Spec
	Size                 int64
	SHA256               string
	Object               string
	CreatedAt, UpdatedAt time.Time
}

// Command is one of the commands below.
type Command interface{ imageCommand() }

// Create registers a new, empty image.
type Create struct {
	ID   ID
	Spec Spec
	At   time.Time
}

// RecordUpload records that the image's bytes were stored.
type RecordUpload struct {
	Object string
	Size   int64
	SHA256 string
	At     time.Time
}

// Delete removes an image.
type Delete struct{ At time.Time }

func (Create) imageCommand()       {}
func (RecordUpload) imageCommand() {}
func (Delete) imageCommand()       {}

// Event type names. Never rename or reuse one.
const (
	TypeCreated  = "image.created"
	TypeUploaded = "image.uploaded"
	TypeDeleted  = "image.deleted"
)

// Created records a new, queued image.
type Created struct {
	ID        ID        `json:"id"`
	Spec      Spec      `json:"spec"`
	CreatedAt time.Time `json:"created_at"`
}

// Uploaded records the stored bytes; the image is active from here on.
type Uploaded struct {
	ID         ID        `json:"id"`
	Object     string    `json:"object"`
	Size       int64     `json:"size"`
	SHA256     string    `json:"sha256"`
	UploadedAt time.Time `json:"uploaded_at"`
}

// ImageDeleted records that an image was removed.
type ImageDeleted struct {
	ID        ID        `json:"id"`
	DeletedAt time.Time `json:"deleted_at"`
}

// EventType implements domain.Event.
func (*Created) EventType() string { return TypeCreated }

// EventType implements domain.Event.
func (*Uploaded) EventType() string { return TypeUploaded }

// EventType implements domain.Event.
func (*ImageDeleted) EventType() string { return TypeDeleted }

// Decider is the image aggregate's behaviour.
var Decider = domain.Decider[State, Command]{
	Type:   AggregateType,
	Decide: Decide,
	Evolve: Evolve,
	Init:   func(id string) State { return State{ID: ID(id)} },
	Registry: domain.Registry{
		TypeCreated:  func() domain.Event { return &Created{} },
		TypeUploaded: func() domain.Event { return &Uploaded{} },
		TypeDeleted:  func() domain.Event { return &ImageDeleted{} },
	},
}

// Validate checks an image spec.
func (s Spec) Validate() error {
	if err := domain.CheckName("name", s.Name); err != nil {
		return err
	}
	ok := false
	for _, f := range Formats {
		ok = ok || f == s.DiskFormat
	}
	if !ok {
		return domain.Invalidf("disk_format must be one of %v, got %q", Formats, s.DiskFormat)
	}
	if s.MinDiskGiB < 0 || s.MinRAMMiB < 0 {
		return domain.Invalidf("min_disk_gib and min_ram_mib must not be negative")
	}
	if s.MinDiskGiB > 1024*1024 || s.MinRAMMiB > 16*1024*1024 {
		return domain.Invalidf("min_disk_gib must be at most %d and min_ram_mib at most %d", 1024*1024, 16*1024*1024)
	}
	return nil
}

// Decide returns the events a command produces.
func Decide(s State, c Command) ([]domain.Event, error) {
	switch c := c.(type) {
	case Create:
		if s.Exists {
			return nil, domain.Conflictf("image %s already exists", s.ID)
		}
		if err := c.Spec.Validate(); err != nil {
			return nil, err
		}
		return []domain.Event{&Created{ID: c.ID, Spec: c.Spec, CreatedAt: c.At}}, nil
	case RecordUpload:
		switch {
		case !s.Exists || s.Status == Deleted:
			return nil, domain.NotFoundf("image %s not found", s.ID)
		case s.Status == Active:
			return nil, domain.Conflictf("image %s already has data (sha256 %s); create a new image instead", s.ID, s.SHA256)
		case c.Size <= 0:
			return nil, domain.Invalidf("image data must not be empty")
		}
		return []domain.Event{&Uploaded{ID: s.ID, Object: c.Object, Size: c.Size, SHA256: c.SHA256, UploadedAt: c.At}}, nil
	case Delete:
		if !s.Exists || s.Status == Deleted {
			return nil, domain.NotFoundf("image %s not found", s.ID)
		}
		return []domain.Event{&ImageDeleted{ID: s.ID, DeletedAt: c.At}}, nil
	default:
		return nil, domain.Invalidf("image: unknown command %T", c)
	}
}

// Evolve folds one event into the state.
func Evolve(s State, ev domain.Event) State {
	switch e := ev.(type) {
	case *Created:
		s.ID, s.Exists, s.Spec, s.Status = e.ID, true, e.Spec, Queued
		s.CreatedAt, s.UpdatedAt = e.CreatedAt, e.CreatedAt
	case *Uploaded:
		s.Status, s.Size, s.SHA256, s.Object, s.UpdatedAt = Active, e.Size, e.SHA256, e.Object, e.UploadedAt
	case *ImageDeleted:
		s.Status = Deleted
	}
	return s
}
