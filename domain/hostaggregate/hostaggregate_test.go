package hostaggregate_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/hostaggregate"
)

func TestMetadataRefusesControlAndBidiCharacters(t *testing.T) {
	d := hostaggregate.Decider
	s := d.Fold(d.Initial("a"), []domain.Event{&hostaggregate.Created{ID: "a", Name: "rack"}})
	cases := []struct {
		name string
		md   map[string]string
		msg  string
	}{
		{"escape in a value", map[string]string{"ssd": "\x1b[31mtrue"}, "metadata value of ssd must not contain control characters (found U+001B)"},
		{"escape in a key", map[string]string{"ssd\x1b[0m": "true"}, "metadata key must not contain control characters (found U+001B)"},
		{"override in a value", map[string]string{"ssd": "eurt\u202e"}, "bidirectional control characters (found U+202E)"},
		{"isolate in a key", map[string]string{"\u2067ssd": "true"}, "bidirectional control characters (found U+2067)"},
		{"uuid zone", map[string]string{"availability_zone": "3f2504e0-4f89-11d3-9a0c-0305e82c3301"}, "availability zone must not be a UUID"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, cmd := range []hostaggregate.Command{
				hostaggregate.SetMetadata{Metadata: c.md},
				hostaggregate.Create{ID: "b", Name: "other", Metadata: c.md},
			} {
				st := s
				if _, ok := cmd.(hostaggregate.Create); ok {
					st = d.Initial("b")
				}
				evs, err := d.Decide(st, cmd)
				if domain.KindOf(err) != domain.Invalid || !strings.Contains(err.Error(), c.msg) || evs != nil {
					t.Fatalf("%T: got %v, %v; want a refusal mentioning %q", cmd, evs, err, c.msg)
				}
			}
		})
	}
}

func TestMembershipAndMetadata(t *testing.T) {
	d := hostaggregate.Decider
	s := d.Initial("a")
	evs, err := d.Decide(s, hostaggregate.Create{ID: "a", Name: "ssd-rack", Metadata: map[string]string{"ssd": "true", "availability_zone": "az1"}})
	if err != nil {
		t.Fatal(err)
	}
	s = d.Fold(s, evs)
	if evs, _ := d.Decide(s, hostaggregate.SetMetadata{Metadata: map[string]string{"ssd": "true"}}); evs != nil {
		t.Fatalf("setting the same metadata emitted %v", evs)
	}
	evs, _ = d.Decide(s, hostaggregate.SetMetadata{Metadata: map[string]string{"ssd": "", "gpu": "a100"}})
	s = d.Fold(s, evs)
	if s.Metadata["gpu"] != "a100" || s.Metadata["ssd"] != "" || s.Metadata["availability_zone"] != "az1" {
		t.Fatalf("metadata %v", s.Metadata)
	}
	evs, _ = d.Decide(s, hostaggregate.AddHost{Host: "h1", Zone: "az1", Join: "j1"})
	s = d.Fold(s, evs)
	if evs, _ := d.Decide(s, hostaggregate.AddHost{Host: "h1", Zone: "az1", Join: "j1"}); evs != nil {
		t.Fatal("adding a host twice emitted events")
	}
	if _, err := d.Decide(s, hostaggregate.Delete{}); domain.KindOf(err) != domain.Conflict {
		t.Fatalf("delete with hosts: %v", err)
	}
	evs, _ = d.Decide(s, hostaggregate.RemoveHost{Host: "h1", Join: "j1"})
	s = d.Fold(s, evs)
	if _, err := d.Decide(s, hostaggregate.RemoveHost{Host: "h1", Join: "j1"}); domain.KindOf(err) != domain.NotFound {
		t.Fatalf("removing a host that is not there: %v", err)
	}
	if _, err := d.Decide(s, hostaggregate.SetMetadata{Metadata: map[string]string{"bad key": "x"}}); domain.KindOf(err) != domain.Invalid {
		t.Fatalf("bad key: %v", err)
	}
}

// The aggregate keeps its zone while it has hosts, and refuses an add
// decided against a zone it no longer has: a host's record of the zones it
// joined (package host) stays true.
func TestZoneRules(t *testing.T) {
	d := hostaggregate.Decider
	az1 := []domain.Event{&hostaggregate.Created{ID: "a", Name: "rack", Metadata: map[string]string{"availability_zone": "az1"}}}
	withHost := append(append([]domain.Event(nil), az1...), &hostaggregate.HostAdded{Host: "h1", Join: "j1"})
	rows := []struct {
		name  string
		given []domain.Event
		when  hostaggregate.Command
		want  []domain.Event
		kind  domain.ErrorKind
		msg   string
	}{
		{"add under the aggregate's zone", az1, hostaggregate.AddHost{Host: "h1", Zone: "az1", Join: "j1"}, []domain.Event{&hostaggregate.HostAdded{Host: "h1", Join: "j1"}}, 0, ""},
		{"add under a zone it no longer has", az1, hostaggregate.AddHost{Host: "h1", Zone: "az0", Join: "j1"}, nil, domain.Conflict, `changed its availability zone to "az1" meanwhile`},
		{"add again with a new join id records it", withHost, hostaggregate.AddHost{Host: "h1", Zone: "az1", Join: "j2"}, []domain.Event{&hostaggregate.HostAdded{Host: "h1", Join: "j2"}}, 0, ""},
		{"remove a joining that was replaced", withHost, hostaggregate.RemoveHost{Host: "h1", Join: "j0"}, nil, domain.Conflict, "added to aggregate rack again meanwhile"},
		{"remove", withHost, hostaggregate.RemoveHost{Host: "h1", Join: "j1"}, []domain.Event{&hostaggregate.HostRemoved{Host: "h1", Join: "j1"}}, 0, ""},
		{"change the zone with hosts", withHost, hostaggregate.SetMetadata{Metadata: map[string]string{"availability_zone": "az2"}}, nil, domain.Conflict, "remove them before changing its availability zone"},
		{"drop the zone with hosts", withHost, hostaggregate.SetMetadata{Metadata: map[string]string{"availability_zone": ""}}, nil, domain.Conflict, "has 1 host(s)"},
		{"other metadata with hosts", withHost, hostaggregate.SetMetadata{Metadata: map[string]string{"ssd": "true"}},
			[]domain.Event{&hostaggregate.MetadataSet{Metadata: map[string]string{"availability_zone": "az1", "ssd": "true"}}}, 0, ""},
		{"change the zone without hosts", az1, hostaggregate.SetMetadata{Metadata: map[string]string{"availability_zone": "az2"}},
			[]domain.Event{&hostaggregate.MetadataSet{Metadata: map[string]string{"availability_zone": "az2"}}}, 0, ""},
	}
	for _, c := range rows {
		t.Run(c.name, func(t *testing.T) {
			got, err := d.Decide(d.Fold(d.Initial("a"), c.given), c.when)
			if c.kind != 0 {
				if domain.KindOf(err) != c.kind || !strings.Contains(err.Error(), c.msg) || got != nil {
					t.Fatalf("got %+v, %v; want kind %d mentioning %q", got, err, c.kind, c.msg)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}
