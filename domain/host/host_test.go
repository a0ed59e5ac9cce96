package host_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/host"
)

var (
	t0   = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	t1   = t0.Add(time.Hour)
	node = host.Spec{Name: "node-1", Driver: "fake", VCPUs: 16, RAMMiB: 65536, DiskGiB: 500}

	none       []domain.Event
	registered = []domain.Event{&host.Registered{ID: "h-1", Spec: node, At: t0}}
)

func spec(f func(s *host.Spec)) host.Spec {
	s := node
	f(&s)
	return s
}

func TestRegister(t *testing.T) {
	register := func(s host.Spec) host.Register { return host.Register{ID: "h-1", Spec: s, At: t1} }
	bigger := spec(func(s *host.Spec) { s.RAMMiB *= 2 })
	cases := []struct {
		name  string
		given []domain.Event
		when  host.Command
		want  []domain.Event
		kind  domain.ErrorKind
		msg   string
	}{
		{"first registration", none, register(node), []domain.Event{&host.Registered{ID: "h-1", Spec: node, At: t1}}, 0, ""},
		{"same spec again emits nothing", registered, register(node), nil, 0, ""},
		{"capacity changed", registered, register(bigger), []domain.Event{&host.Registered{ID: "h-1", Spec: bigger, At: t1}}, 0, ""},
		{"driver changed", registered, register(spec(func(s *host.Spec) { s.Driver = "libvirt" })),
			[]domain.Event{&host.Registered{ID: "h-1", Spec: spec(func(s *host.Spec) { s.Driver = "libvirt" }), At: t1}}, 0, ""},
		{"no disk", none, register(spec(func(s *host.Spec) { s.DiskGiB = 0 })),
			[]domain.Event{&host.Registered{ID: "h-1", Spec: spec(func(s *host.Spec) { s.DiskGiB = 0 }), At: t1}}, 0, ""},
		{"empty name", none, register(spec(func(s *host.Spec) { s.Name = "" })), nil, domain.Invalid, "host name must not be empty"},
		{"control character", none, register(spec(func(s *host.Spec) { s.Name = "node\r1" })), nil, domain.Invalid, "host name must not contain control characters"},
		{"long name", none, register(spec(func(s *host.Spec) { s.Name = strings.Repeat("n", 256) })), nil, domain.Invalid, "host name is 256 bytes long"},
		{"no vcpus", none, register(spec(func(s *host.Spec) { s.VCPUs = 0 })), nil, domain.Invalid, "host node-1: vcpus must be positive, got 0"},
		{"no ram", none, register(spec(func(s *host.Spec) { s.RAMMiB = 0 })), nil, domain.Invalid, "ram_mib must be positive, got 0"},
		{"invalid again is still refused", registered, register(spec(func(s *host.Spec) { s.VCPUs = -4 })), nil, domain.Invalid, "must be positive"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := host.Decide(host.Decider.Fold(host.State{}, c.given), c.when)
			if c.kind != 0 {
				if domain.KindOf(err) != c.kind || !strings.Contains(err.Error(), c.msg) || got != nil {
					t.Fatalf("got %+v, %v (kind %d); want kind %d mentioning %q", got, err, domain.KindOf(err), c.kind, c.msg)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}

// A negative disk is refused, but the message speaks only of vcpus and
// ram_mib, so the host's operator cannot tell which number is wrong.
func TestRegisterNegativeDiskSaysSo(t *testing.T) {
	_, err := host.Decide(host.State{}, host.Register{ID: "h-1", Spec: spec(func(s *host.Spec) { s.DiskGiB = -1 }), At: t1})
	if domain.KindOf(err) != domain.Invalid {
		t.Fatalf("got %v, want Invalid", err)
	}
	if !strings.Contains(err.Error(), "disk_gib") {
		t.Errorf("BUG: message %q does not name disk_gib, the field that is wrong", err)
	}
}

func TestEvolve(t *testing.T) {
	s := host.Decider.Fold(host.State{}, registered)
	if s != (host.State{ID: "h-1", Exists: true, Spec: node}) {
		t.Fatalf("after registered: %+v", s)
	}
	bigger := spec(func(s *host.Spec) { s.VCPUs = 32 })
	s = host.Evolve(s, &host.Registered{ID: "h-1", Spec: bigger, At: t1})
	if s.Spec != bigger {
		t.Fatalf("a new registration must replace the spec: %+v", s)
	}
}
