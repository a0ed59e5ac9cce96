package host

import (
	"maps"
	"slices"

	"github.com/keel-cloud/keel/domain"
)

// Membership is what the host records of one host aggregate it joined.
type Membership struct {
	Name string // the aggregate's name when the host joined
	Zone string // its availability zone, "" for none
	Join string // the joining's id: the command id of the add
}

// Zone is the availability zone the host's aggregates put it in, "" for none.
func (s State) Zone() string {
	for _, m := range s.Aggregates {
		if m.Zone != "" {
			return m.Zone
		}
	}
	return ""
}

// decideJoin is where a host is kept in one availability zone: the host's
// record of the aggregates it joined is checked and extended in one commit
// on its own stream, so two racing joins of aggregates in different zones
// cannot both pass. The record is a superset of the aggregates that list
// the host (joined before the aggregate adds it, left after the aggregate
// lets it go), so the check never misses a membership.
func decideJoin(s State, c JoinAggregate) ([]domain.Event, error) {
	if c.Aggregate == "" || c.Join == "" {
		return nil, domain.Invalidf("joining host %s to an aggregate needs the aggregate and a join id", s.Spec.Name)
	}
	if m, ok := s.Aggregates[c.Aggregate]; ok && m == (Membership{Name: c.Name, Zone: c.Zone, Join: c.Join}) {
		return nil, nil
	}
	if c.Zone != "" {
		for _, id := range slices.Sorted(maps.Keys(s.Aggregates)) {
			m := s.Aggregates[id]
			if id != c.Aggregate && m.Zone != "" && m.Zone != c.Zone {
				return nil, domain.Conflictf("host %s is already in availability zone %s (aggregate %s); a host is in one zone, so it cannot join aggregate %s of zone %s",
					s.Spec.Name, m.Zone, m.Name, c.Name, c.Zone)
			}
		}
	}
	return []domain.Event{&AggregateJoined{Aggregate: c.Aggregate, Name: c.Name, Zone: c.Zone, Join: c.Join, At: c.At}}, nil
}

// cloneAggregates copies the map so that cached states are never changed in place.
func cloneAggregates(m map[string]Membership) map[string]Membership {
	out := make(map[string]Membership, len(m)+1)
	maps.Copy(out, m)
	return out
}
