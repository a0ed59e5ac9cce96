package floatingip_test

import (
	"testing"
	"time"

	"github.com/keel-cloud/keel/domain"
	dt "github.com/keel-cloud/keel/domain/decidertest"
	fip "github.com/keel-cloud/keel/domain/floatingip"
)

var (
	t0         = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	assoc      = fip.Association{Port: "pt-1", FixedIP: "10.0.0.2", Router: "r-1"}
	created    = []domain.Event{&fip.Created{ID: "f-1", Project: "p-1", Network: "ext", Subnet: "ext-s", IP: "203.0.113.5", At: t0}}
	associated = dt.Plus(created, &fip.Associated{Association: assoc, At: t0})
)

func TestFloatingIP(t *testing.T) {
	dt.Run(t, fip.Decider, "f-1", []dt.Case[fip.Command]{
		{Name: "create", When: fip.Create{ID: "f-1", Project: "p-1", Network: "ext", Subnet: "ext-s", IP: "203.0.113.5", At: t0}, Then: dt.Then(created...)},
		{Name: "create twice", Given: created, When: fip.Create{ID: "f-1", Project: "p-1", Network: "ext", Subnet: "ext-s", IP: "203.0.113.5", At: t0}, Then: dt.Refused(domain.Conflict, "floating IP f-1 already exists")},
		{Name: "create without a subnet", When: fip.Create{ID: "f-1", Project: "p-1", Network: "ext", IP: "203.0.113.5", At: t0}, Then: dt.Refused(domain.Invalid, "comes from an external network's subnet")},
		{Name: "create with a bad address", When: fip.Create{ID: "f-1", Project: "p-1", Network: "ext", Subnet: "ext-s", IP: "203.0.113.500", At: t0}, Then: dt.Refused(domain.Invalid, `floating IP address "203.0.113.500" is not an IPv4 address`)},
		{Name: "associate", Given: created, When: fip.Associate{Association: assoc, At: t0}, Then: dt.Then(&fip.Associated{Association: assoc, At: t0})},
		{Name: "associate again", Given: associated, When: fip.Associate{Association: assoc, At: t0}, Then: dt.Then()},
		{Name: "associate with another port", Given: associated, When: fip.Associate{Association: fip.Association{Port: "pt-2", FixedIP: "10.0.0.3", Router: "r-1"}, At: t0},
			Then: dt.Refused(domain.Conflict, "floating IP 203.0.113.5 is associated with port pt-1 (10.0.0.2); disassociate it first")},
		{Name: "associate without a router", Given: created, When: fip.Associate{Association: fip.Association{Port: "pt-1", FixedIP: "10.0.0.2"}, At: t0},
			Then: dt.Refused(domain.Invalid, "needs a port and the router that reaches it")},
		{Name: "associate with a bad fixed IP", Given: created, When: fip.Associate{Association: fip.Association{Port: "pt-1", FixedIP: "x", Router: "r-1"}, At: t0},
			Then: dt.Refused(domain.Invalid, `fixed IP "x" is not an IPv4 address`)},
		{Name: "disassociate", Given: associated, When: fip.Disassociate{At: t0}, Then: dt.Then(&fip.Disassociated{Association: assoc, At: t0})},
		{Name: "disassociate a free one", Given: created, When: fip.Disassociate{At: t0}, Then: dt.Then()},
		{Name: "delete", Given: created, When: fip.Delete{At: t0}, Then: dt.Then(&fip.Deleted{Subnet: "ext-s", IP: "203.0.113.5", At: t0})},
		{Name: "delete an associated one", Given: associated, When: fip.Delete{At: t0},
			Then: dt.Then(&fip.Disassociated{Association: assoc, At: t0}, &fip.Deleted{Subnet: "ext-s", IP: "203.0.113.5", At: t0})},
		{Name: "delete twice", Given: dt.Plus(created, &fip.Deleted{Subnet: "ext-s", IP: "203.0.113.5", At: t0}), When: fip.Delete{At: t0}, Then: dt.Refused(domain.NotFound, "floating IP f-1 not found")},
		{Name: "associate an unknown one", When: fip.Associate{Association: assoc, At: t0}, Then: dt.Refused(domain.NotFound, "not found")},
		{Name: "abandon", When: fip.Abandon{Reason: "cut short", At: t0}, Then: dt.Then(&fip.Abandoned{ID: "f-1", Reason: "cut short", At: t0})},
		{Name: "abandon one that exists", Given: created, When: fip.Abandon{At: t0}, Then: dt.Refused(domain.Conflict, "floating IP f-1 exists")},
		{Name: "create after the abandon", Given: []domain.Event{&fip.Abandoned{ID: "f-1", At: t0}},
			When: fip.Create{ID: "f-1", Project: "p-1", Network: "ext", Subnet: "ext-s", IP: "203.0.113.5", At: t0}, Then: dt.Refused(domain.Conflict, "was abandoned")},
	})
}
