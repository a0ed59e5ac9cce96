package flavor_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/decidertest"
	"github.com/keel-cloud/keel/domain/flavor"
)

const fid = flavor.ID("fl-1")

var (
	t0    = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	t1    = t0.Add(time.Hour)
	small = flavor.Spec{Name: "m1.small", VCPUs: 1, RAMMiB: 512, DiskGiB: 10}

	none    []domain.Event
	created = []domain.Event{&flavor.Created{ID: fid, Spec: small, CreatedAt: t0}}
	deleted = plus(created, &flavor.Deleted{ID: fid, DeletedAt: t0})
)

func plus(base []domain.Event, more ...domain.Event) []domain.Event {
	return slices.Concat(base, more)
}

// spec returns the small spec changed by f.
func spec(f func(s *flavor.Spec)) flavor.Spec {
	s := small
	f(&s)
	return s
}

func TestDecide(t *testing.T) {
	create := func(s flavor.Spec) flavor.Create { return flavor.Create{ID: fid, Spec: s, At: t1} }
	cases := []struct {
		name  string
		given []domain.Event
		when  flavor.Command
		want  []domain.Event
		kind  domain.ErrorKind
		msg   string
	}{
		{"create", none, create(small), []domain.Event{&flavor.Created{ID: fid, Spec: small, CreatedAt: t1}}, 0, ""},
		{"largest", none, create(flavor.Spec{Name: "huge", VCPUs: flavor.MaxVCPUs, RAMMiB: flavor.MaxRAMMiB, DiskGiB: flavor.MaxDiskGiB}),
			[]domain.Event{&flavor.Created{ID: fid, Spec: flavor.Spec{Name: "huge", VCPUs: 1024, RAMMiB: 16 << 20, DiskGiB: 1 << 20}, CreatedAt: t1}}, 0, ""},
		{"diskless", none, create(spec(func(s *flavor.Spec) { s.DiskGiB = 0 })),
			[]domain.Event{&flavor.Created{ID: fid, Spec: spec(func(s *flavor.Spec) { s.DiskGiB = 0 }), CreatedAt: t1}}, 0, ""},
		{"empty name", none, create(spec(func(s *flavor.Spec) { s.Name = "" })), nil, domain.Invalid, "name must not be empty"},
		{"long name", none, create(spec(func(s *flavor.Spec) { s.Name = strings.Repeat("x", 256) })), nil, domain.Invalid, "the limit is 255"},
		{"control character", none, create(spec(func(s *flavor.Spec) { s.Name = "m1\x1b[31m" })), nil, domain.Invalid, "control characters"},
		{"leading space", none, create(spec(func(s *flavor.Spec) { s.Name = " m1" })), nil, domain.Invalid, "white space"},
		{"uuid name", none, create(spec(func(s *flavor.Spec) { s.Name = "3f2504e0-4f89-11d3-9a0c-0305e82c3301" })), nil, domain.Invalid, "name must not be a UUID"},
		{"override in name", none, create(spec(func(s *flavor.Spec) { s.Name = "m1\u202e" })), nil, domain.Invalid, "bidirectional"},
		{"escape in extra spec value", none, create(spec(func(s *flavor.Spec) { s.ExtraSpecs = map[string]string{"aggregate:ssd": "\x1b[2Jtrue"} })),
			nil, domain.Invalid, "extra spec aggregate:ssd must not contain control characters"},
		{"escape in extra spec key", none, create(spec(func(s *flavor.Spec) { s.ExtraSpecs = map[string]string{"trait:\x1b[2J": "required"} })),
			nil, domain.Invalid, "extra spec key must not contain control characters"},
		{"isolate in extra spec key", none, create(spec(func(s *flavor.Spec) { s.ExtraSpecs = map[string]string{"aggregate:\u2066x": "1"} })),
			nil, domain.Invalid, "extra spec key must not contain bidirectional control characters"},
		{"no vcpu", none, create(spec(func(s *flavor.Spec) { s.VCPUs = 0 })), nil, domain.Invalid, "vcpus must be between 1 and 1024, got 0"},
		{"too many vcpus", none, create(spec(func(s *flavor.Spec) { s.VCPUs = 1025 })), nil, domain.Invalid, "vcpus must be between 1 and 1024, got 1025"},
		{"no ram", none, create(spec(func(s *flavor.Spec) { s.RAMMiB = 0 })), nil, domain.Invalid, "ram_mib must be between 1 and 16777216, got 0"},
		{"too much ram", none, create(spec(func(s *flavor.Spec) { s.RAMMiB = flavor.MaxRAMMiB + 1 })), nil, domain.Invalid, "ram_mib must be between 1 and 16777216, got 16777217"},
		{"negative disk", none, create(spec(func(s *flavor.Spec) { s.DiskGiB = -1 })), nil, domain.Invalid, "disk_gib must be between 0 and 1048576, got -1"},
		{"too much disk", none, create(spec(func(s *flavor.Spec) { s.DiskGiB = flavor.MaxDiskGiB + 1 })), nil, domain.Invalid, "disk_gib must be between 0 and 1048576, got 1048577"},
		{"exists", created, create(small), nil, domain.Conflict, "flavor fl-1 already exists"},
		{"deleted id is not reused", deleted, create(small), nil, domain.Conflict, "flavor fl-1 already exists"},
		{"delete", created, flavor.Delete{At: t1}, []domain.Event{&flavor.Deleted{ID: fid, DeletedAt: t1}}, 0, ""},
		{"delete twice", deleted, flavor.Delete{At: t1}, nil, domain.NotFound, "flavor fl-1 not found"},
		{"delete unknown", none, flavor.Delete{At: t1}, nil, domain.NotFound, "not found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			decidertest.Decide(t, flavor.Decider, "", c.given, c.when, decidertest.Expect(c.want, c.kind, c.msg))
		})
	}
}

func TestEvolve(t *testing.T) {
	s := flavor.Decider.Fold(flavor.State{}, created)
	if !reflect.DeepEqual(s, flavor.State{ID: fid, Exists: true, Spec: small, CreatedAt: t0}) {
		t.Fatalf("after created: %+v", s)
	}
	s = flavor.Decider.Fold(flavor.State{}, deleted)
	if !reflect.DeepEqual(s, flavor.State{ID: fid, Exists: true, Deleted: true, Spec: small, CreatedAt: t0}) {
		t.Fatalf("after deleted: %+v (a deleted flavor keeps its spec for the servers built from it)", s)
	}
}
