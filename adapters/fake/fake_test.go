package fake

import (
	"context"
	"maps"
	"testing"

	"github.com/keel-cloud/keel/adapters/agent"
	"github.com/keel-cloud/keel/adapters/agent/drivertest"
)

// A simulated host keeps its servers across a restart of its process, as a
// hypervisor keeps its domains: a host made anew on the same folder holds
// them, with their power state, and forgets the destroyed ones.
func TestPersistedHostKeepsItsServers(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	h := NewHost("sim-1", Knobs{}, 1)
	if err := h.Persist(dir); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		if err := h.Spawn(ctx, agent.ServerSpec{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.PowerOff(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if err := h.Destroy(ctx, "c"); err != nil {
		t.Fatal(err)
	}

	again := NewHost("sim-1", Knobs{}, 1)
	if err := again.Persist(dir); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "RUNNING", "b": "SHUTOFF"}
	if got := again.Servers(); !maps.Equal(got, want) {
		t.Fatalf("after restart the host holds %v, want %v", got, want)
	}
	if err := again.PowerOn(ctx, "b"); err != nil {
		t.Fatalf("power on a server held before the restart: %v", err)
	}
	// Another host on the same folder does not see them.
	other := NewHost("sim-2", Knobs{}, 2)
	if err := other.Persist(dir); err != nil {
		t.Fatal(err)
	}
	if n := len(other.Servers()); n != 0 {
		t.Fatalf("sim-2 holds %d servers of sim-1", n)
	}
}

// Without a folder the host keeps nothing: a new one starts empty.
func TestInMemoryHostStartsEmpty(t *testing.T) {
	h := NewHost("sim-1", Knobs{}, 1)
	if err := h.Spawn(context.Background(), agent.ServerSpec{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	if n := len(NewHost("sim-1", Knobs{}, 1).Servers()); n != 0 {
		t.Fatalf("a new in-memory host holds %d servers", n)
	}
}

// The simulated host passes the driver contract the libvirt driver passes.
func TestFakeDriverContract(t *testing.T) {
	drivertest.Run(t, drivertest.Harness{
		New: func(t *testing.T) agent.Driver {
			h := NewHost("sim", Knobs{}, 1)
			if err := h.Persist(t.TempDir()); err != nil {
				t.Fatal(err)
			}
			return h
		},
		Spec: func(t *testing.T, id string) agent.ServerSpec {
			return agent.ServerSpec{ID: id, Name: "s-" + id[:8], VCPUs: 1, RAMMiB: 256, DiskGiB: 1}
		},
	})
}
