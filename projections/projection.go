// Package projections builds the Postgres read model from the event log.
// Each projection has a name, a version, its tables and a checkpoint row; it
// applies a batch of commits and advances its checkpoint in the same
// transaction, so a crash neither loses nor doubles a commit. A projection
// can be rebuilt from sequence 1 into new tables and swapped in while the
// API keeps reading the old ones.
//
// Projections only write the read model; they never issue commands.
package projections

import (
	"fmt"

	"github.com/keel-cloud/keel/domain"
)

// Tables maps a projection's logical table names to the physical ones: the
// live tables, or their __rebuild copies during a rebuild.
type Tables map[string]string

// T returns the physical name of a logical table.
func (t Tables) T(logical string) string {
	if p, ok := t[logical]; ok {
		return p
	}
	panic(fmt.Sprintf("projection uses undeclared table %q", logical))
}

// Fresh tells the rebuild copies, which are new and filled once, in order
// (no commit meets them twice), from the live tables.
func (t Tables) Fresh() bool {
	for logical, physical := range t {
		return physical != logical
	}
	return false
}

// Projection is one read-model view of the event log.
type Projection struct {
	// Name is stable; the checkpoint row is keyed by it.
	Name string
	// Version changes when Apply changes meaning; a stored checkpoint with
	// another version triggers a rebuild at start.
	Version int
	// Tables the projection owns (and rebuilds).
	Tables []string
	// Apply writes what one commit changes. It must not read: statements
	// are sent in one batch per transaction, and the Writer folds the
	// writes of one row within the batch.
	Apply func(w *Writer, t Tables, env domain.Envelope, events []domain.Event) error
	// ApplyBatch, when set, is used instead of Apply and writes a whole
	// batch of commits (in order, with their decoded events) at once.
	ApplyBatch func(w *Writer, t Tables, envs []domain.Envelope, events [][]domain.Event) error
}

func (p Projection) live() Tables {
	t := Tables{}
	for _, n := range p.Tables {
		t[n] = n
	}
	return t
}

func (p Projection) rebuild() Tables {
	t := Tables{}
	for _, n := range p.Tables {
		t[n] = n + "__rebuild"
	}
	return t
}

// All lists Keel's projections.
func All() []Projection {
	return []Projection{Flavors, Images, Keypairs, Servers, Operations, Hosts, ServerGroups, HostAggregates, Identity, QuotaHolds, Events, Usage, Networks, Routers}
}

// ByName finds a projection.
func ByName(name string) (Projection, bool) {
	for _, p := range All() {
		if p.Name == name {
			return p, true
		}
	}
	return Projection{}, false
}
