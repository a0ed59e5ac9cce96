package commands_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	keeljs "github.com/keel-cloud/keel/adapters/jetstream"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/host"
	"github.com/keel-cloud/keel/domain/hostaggregate"
)

// Two replicas race to add one host into two aggregates of different
// zones, round after round: one add wins, the other is a conflict naming
// the zone, and the host ends up listed by one aggregate only.
func TestRacingAddsNeverPutAHostInTwoZones(t *testing.T) {
	store, ctx := openStore(t), ctxT(t)
	apps := []*commands.App{commands.NewApp(store), commands.NewApp(store)}
	for round := range 25 {
		name := fmt.Sprintf("node-%d", round)
		if _, err := apps[0].Hosts.Handle(ctx, commands.HostID(name), host.Register{ID: commands.HostID(name), Spec: host.Spec{Name: name, Driver: "fake", VCPUs: 4, RAMMiB: 4096}}, meta("reg-"+name)); err != nil {
			t.Fatal(err)
		}
		var aggs [2]string
		for i, zone := range []string{"az-a", "az-b"} {
			res, err := apps[0].CreateAggregate(ctx, fmt.Sprintf("%s-%d", zone, round), map[string]string{hostaggregate.AZKey: zone}, meta(fmt.Sprintf("agg-%d-%d", round, i)))
			if err != nil {
				t.Fatal(err)
			}
			aggs[i] = res.State.ID
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range 2 {
			wg.Go(func() {
				_, errs[i] = apps[i].AddAggregateHost(ctx, aggs[i], name, meta(fmt.Sprintf("add-%d-%d", round, i)))
			})
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case domain.KindOf(err) != domain.Conflict || !strings.Contains(err.Error(), "is already in availability zone az-"):
				t.Fatalf("round %d: %v", round, err)
			}
		}
		listed := 0
		for _, id := range aggs {
			st, _, err := apps[0].Aggregates.LoadLatest(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if slices.Contains(st.Hosts, name) {
				listed++
			}
		}
		h, _, err := apps[1].Hosts.LoadLatest(ctx, commands.HostID(name))
		if err != nil {
			t.Fatal(err)
		}
		if won != 1 || listed != 1 || len(h.Aggregates) != 1 {
			t.Fatalf("round %d: %d adds won, %d aggregates list the host, the host records %v (errors %v)", round, won, listed, h.Aggregates, errs)
		}
	}
}

// An add decided against a zone the aggregate no longer has is refused by
// the aggregate, and the host's joining is undone, so the host can join
// another zone afterwards. Removal lets the host go on both sides.
func TestAddUndoesTheJoiningWhenTheAggregateRefuses(t *testing.T) {
	js, ctx := openStore(t), ctxT(t)
	other := commands.NewApp(js) // another replica
	store := &afterJoin{Store: js}
	a := commands.NewApp(store)
	hid := commands.HostID("node-1")
	if _, err := a.Hosts.Handle(ctx, hid, host.Register{ID: hid, Spec: host.Spec{Name: "node-1", Driver: "fake", VCPUs: 4, RAMMiB: 4096}}, meta("reg")); err != nil {
		t.Fatal(err)
	}
	rack, err := a.CreateAggregate(ctx, "rack", map[string]string{hostaggregate.AZKey: "az1"}, meta("rack"))
	if err != nil {
		t.Fatal(err)
	}
	// The other replica changes the zone right after the host's joining:
	// the one moment a racing metadata change can slip in.
	store.hook = func() {
		if _, err := other.Aggregates.Handle(ctx, rack.State.ID, hostaggregate.SetMetadata{Metadata: map[string]string{hostaggregate.AZKey: "az9"}}, meta("rezone")); err != nil {
			t.Error(err)
		}
	}
	_, err = a.AddAggregateHost(ctx, rack.State.ID, "node-1", meta("add-1"))
	if domain.KindOf(err) != domain.Conflict || !strings.Contains(err.Error(), `changed its availability zone to "az9" meanwhile`) {
		t.Fatalf("add under a changed zone: %v", err)
	}
	if h, _, _ := a.Hosts.LoadLatest(ctx, hid); len(h.Aggregates) != 0 {
		t.Fatalf("joining not undone: %v", h.Aggregates)
	}
	if _, err := a.AddAggregateHost(ctx, rack.State.ID, "node-1", meta("add-2")); err != nil {
		t.Fatal(err)
	}
	if h, _, _ := a.Hosts.LoadLatest(ctx, hid); h.Zone() != "az9" {
		t.Fatalf("host zone %q after the second add", h.Zone())
	}
	if _, err := a.AddAggregateHost(ctx, rack.State.ID, "nobody", meta("add-3")); domain.KindOf(err) != domain.Invalid {
		t.Fatalf("unknown host: %v", err)
	}
	if _, err := a.RemoveAggregateHost(ctx, rack.State.ID, "node-1", meta("rm")); err != nil {
		t.Fatal(err)
	}
	h, _, _ := a.Hosts.LoadLatest(ctx, hid)
	ag, _, _ := a.Aggregates.LoadLatest(ctx, rack.State.ID)
	if len(h.Aggregates) != 0 || len(ag.Hosts) != 0 {
		t.Fatalf("after removal: host records %v, aggregate lists %v", h.Aggregates, ag.Hosts)
	}
}

// afterJoin runs hook once, after the first host.aggregate_joined lands.
type afterJoin struct {
	*keeljs.Store
	once sync.Once
	hook func()
}

func (s *afterJoin) Append(ctx context.Context, env *domain.Envelope, expectedSeq uint64) (uint64, bool, error) {
	seq, dup, err := s.Store.Append(ctx, env, expectedSeq)
	if err == nil && s.hook != nil && len(env.Events) > 0 && env.Events[0].Type == host.TypeAggregateJoined {
		s.once.Do(s.hook)
	}
	return seq, dup, err
}
