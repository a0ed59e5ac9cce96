package commands_test

import (
	"testing"

	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/flavor"
)

// Create skips reading a new aggregate's subject; a retry of the same
// command (here from a cold handler, as after a restart) is still
// recognised, and a create on an existing aggregate is still refused.
func TestCreateSkipsTheReadButNotTheChecks(t *testing.T) {
	s := openStore(t)
	ctx := ctxT(t)
	cs := newCounted(s)
	h := commands.New(cs, flavor.Decider, 100)
	spec := flavor.Spec{Name: "m1", VCPUs: 1, RAMMiB: 512}
	r1, err := h.Create(ctx, "f-1", flavor.Create{ID: "f-1", Spec: spec}, meta("create-f1"))
	if err != nil || r1.Duplicate {
		t.Fatalf("create: %+v %v", r1, err)
	}
	if n := cs.loadCount(); n != 0 {
		t.Fatalf("Create read the store %d times for a new aggregate", n)
	}
	cold := commands.New(s, flavor.Decider, 100)
	r2, err := cold.Create(ctx, "f-1", flavor.Create{ID: "f-1", Spec: spec}, meta("create-f1"))
	if err != nil || !r2.Duplicate || r2.Seq != r1.Seq {
		t.Fatalf("retried create: %+v %v, first at %d", r2, err, r1.Seq)
	}
	_, err = commands.New(s, flavor.Decider, 100).Create(ctx, "f-1", flavor.Create{ID: "f-1", Spec: spec}, meta("another"))
	if domain.KindOf(err) != domain.Conflict {
		t.Fatalf("create over an existing aggregate: %v", err)
	}
	if n := len(history(t, s, flavor.AggregateType, "f-1")); n != 1 {
		t.Fatalf("%d commits, want 1", n)
	}
}
