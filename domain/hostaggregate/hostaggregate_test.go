package hostaggregate_test

import (
	"testing"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/hostaggregate"
)

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
