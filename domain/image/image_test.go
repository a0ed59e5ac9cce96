package image_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/decidertest"
	"github.com/keel-cloud/keel/domain/image"
)

const (
	iid = image.ID("img-1")
	sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
)

var (
	t0     = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	t1     = t0.Add(time.Hour)
	cirros = image.Spec{Name: "cirros", DiskFormat: "qcow2", MinDiskGiB: 1, MinRAMMiB: 64}

	none     []domain.Event
	queued   = []domain.Event{&image.Created{ID: iid, Spec: cirros, CreatedAt: t0}}
	active   = plus(queued, &image.Uploaded{ID: iid, Object: "images/img-1", Size: 1 << 20, SHA256: sha, UploadedAt: t0})
	deleted  = plus(active, &image.ImageDeleted{ID: iid, DeletedAt: t0})
	deletedQ = plus(queued, &image.ImageDeleted{ID: iid, DeletedAt: t0})
)

func plus(base []domain.Event, more ...domain.Event) []domain.Event {
	return slices.Concat(base, more)
}

func spec(f func(s *image.Spec)) image.Spec {
	s := cirros
	f(&s)
	return s
}

func TestDecide(t *testing.T) {
	create := func(s image.Spec) image.Create { return image.Create{ID: iid, Spec: s, At: t1} }
	upload := image.RecordUpload{Object: "images/img-1", Size: 42, SHA256: sha, At: t1}
	empty := upload
	empty.Size = 0
	negative := upload
	negative.Size = -1
	cases := []struct {
		name  string
		given []domain.Event
		when  image.Command
		want  []domain.Event
		kind  domain.ErrorKind
		msg   string
	}{
		{"create", none, create(cirros), []domain.Event{&image.Created{ID: iid, Spec: cirros, CreatedAt: t1}}, 0, ""},
		{"raw", none, create(spec(func(s *image.Spec) { s.DiskFormat = "raw" })), []domain.Event{&image.Created{ID: iid, Spec: spec(func(s *image.Spec) { s.DiskFormat = "raw" }), CreatedAt: t1}}, 0, ""},
		{"iso without minimums", none, create(image.Spec{Name: "boot", DiskFormat: "iso"}), []domain.Event{&image.Created{ID: iid, Spec: image.Spec{Name: "boot", DiskFormat: "iso"}, CreatedAt: t1}}, 0, ""},
		{"empty name", none, create(spec(func(s *image.Spec) { s.Name = "" })), nil, domain.Invalid, "name must not be empty"},
		{"long name", none, create(spec(func(s *image.Spec) { s.Name = strings.Repeat("i", 300) })), nil, domain.Invalid, "300 bytes long"},
		{"control character", none, create(spec(func(s *image.Spec) { s.Name = "cir\x00ros" })), nil, domain.Invalid, "control characters"},
		{"trailing space", none, create(spec(func(s *image.Spec) { s.Name = "cirros " })), nil, domain.Invalid, "white space"},
		{"unknown format", none, create(spec(func(s *image.Spec) { s.DiskFormat = "vmdk" })), nil, domain.Invalid, `disk_format must be one of [raw qcow2 iso], got "vmdk"`},
		{"no format", none, create(spec(func(s *image.Spec) { s.DiskFormat = "" })), nil, domain.Invalid, `got ""`},
		{"format is case sensitive", none, create(spec(func(s *image.Spec) { s.DiskFormat = "QCOW2" })), nil, domain.Invalid, "disk_format"},
		{"negative min disk", none, create(spec(func(s *image.Spec) { s.MinDiskGiB = -1 })), nil, domain.Invalid, "must not be negative"},
		{"negative min ram", none, create(spec(func(s *image.Spec) { s.MinRAMMiB = -1 })), nil, domain.Invalid, "must not be negative"},
		{"exists", queued, create(cirros), nil, domain.Conflict, "image img-1 already exists"},
		{"deleted id is not reused", deleted, create(cirros), nil, domain.Conflict, "already exists"},

		{"upload to queued", queued, upload, []domain.Event{&image.Uploaded{ID: iid, Object: "images/img-1", Size: 42, SHA256: sha, UploadedAt: t1}}, 0, ""},
		{"upload empty", queued, empty, nil, domain.Invalid, "image data must not be empty"},
		{"upload negative size", queued, negative, nil, domain.Invalid, "must not be empty"},
		{"upload twice", active, upload, nil, domain.Conflict, "image img-1 already has data (sha256 " + sha + "); create a new image instead"},
		{"upload to deleted", deleted, upload, nil, domain.NotFound, "image img-1 not found"},
		{"upload to deleted queued", deletedQ, upload, nil, domain.NotFound, "not found"},
		{"upload to unknown", none, upload, nil, domain.NotFound, "not found"},

		{"delete queued", queued, image.Delete{At: t1}, []domain.Event{&image.ImageDeleted{ID: iid, DeletedAt: t1}}, 0, ""},
		{"delete active", active, image.Delete{At: t1}, []domain.Event{&image.ImageDeleted{ID: iid, DeletedAt: t1}}, 0, ""},
		{"delete twice", deleted, image.Delete{At: t1}, nil, domain.NotFound, "image img-1 not found"},
		{"delete unknown", none, image.Delete{At: t1}, nil, domain.NotFound, "not found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			decidertest.Decide(t, image.Decider, "", c.given, c.when, decidertest.Expect(c.want, c.kind, c.msg))
		})
	}
}

func TestEvolve(t *testing.T) {
	cases := []struct {
		given []domain.Event
		want  image.State
	}{
		{queued, image.State{ID: iid, Exists: true, Status: image.Queued, Spec: cirros, CreatedAt: t0, UpdatedAt: t0}},
		{active, image.State{ID: iid, Exists: true, Status: image.Active, Spec: cirros, Size: 1 << 20, SHA256: sha, Object: "images/img-1", CreatedAt: t0, UpdatedAt: t0}},
		{deleted, image.State{ID: iid, Exists: true, Status: image.Deleted, Spec: cirros, Size: 1 << 20, SHA256: sha, Object: "images/img-1", CreatedAt: t0, UpdatedAt: t0}},
		{deletedQ, image.State{ID: iid, Exists: true, Status: image.Deleted, Spec: cirros, CreatedAt: t0, UpdatedAt: t0}},
	}
	for i, c := range cases {
		if got := image.Decider.Fold(image.State{}, c.given); got != c.want {
			t.Errorf("case %d: %+v\nwant    %+v", i, got, c.want)
		}
	}
}

func TestImageMinimumsAreBounded(t *testing.T) {
	_, err := image.Decide(image.State{}, image.Create{ID: "i", Spec: image.Spec{Name: "x", DiskFormat: "raw", MinRAMMiB: 1 << 31}})
	if domain.KindOf(err) != domain.Invalid {
		t.Fatalf("huge min_ram_mib: %v", err)
	}
}
