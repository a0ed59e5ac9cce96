package hostaggregate_test

import (
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
	evs, _ = d.Decide(s, hostaggregate.AddHost{Host: "h1"})
	s = d.Fold(s, evs)
	if evs, _ := d.Decide(s, hostaggregate.AddHost{Host: "h1"}); evs != nil {
		t.Fatal("adding a host twice emitted events")
	}
	if _, err := d.Decide(s, hostaggregate.Delete{}); domain.KindOf(err) != domain.Conflict {
		t.Fatalf("delete with hosts: %v", err)
	}
	evs, _ = d.Decide(s, hostaggregate.RemoveHost{Host: "h1"})
	s = d.Fold(s, evs)
	if _, err := d.Decide(s, hostaggregate.RemoveHost{Host: "h1"}); domain.KindOf(err) != domain.NotFound {
		t.Fatalf("removing a host that is not there: %v", err)
	}
	if _, err := d.Decide(s, hostaggregate.SetMetadata{Metadata: map[string]string{"bad key": "x"}}); domain.KindOf(err) != domain.Invalid {
		t.Fatalf("bad key: %v", err)
	}
}
