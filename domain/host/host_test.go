package host_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/decidertest"
	"github.com/keel-cloud/keel/domain/host"
)

var (
	t0   = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	t1   = t0.Add(time.Hour)
	node = host.Spec{Name: "node-1", Driver: "fake", VCPUs: 16, RAMMiB: 65536, DiskGiB: 500, Traits: []string{"gpu"}}
	def  = host.DefaultRatios

	none       []domain.Event
	registered = []domain.Event{&host.Registered{ID: "h-1", Spec: node, Ratios: &def, At: t0}}
	small      = host.Resources{VCPUs: 2, RAMMiB: 4096, DiskGiB: 20}
)

func with(base []domain.Event, more ...domain.Event) []domain.Event {
	return append(append([]domain.Event(nil), base...), more...)
}

func spec(f func(s *host.Spec)) host.Spec {
	s := node
	s.Traits = append([]string(nil), node.Traits...)
	f(&s)
	return s
}

type row struct {
	name  string
	given []domain.Event
	when  host.Command
	want  []domain.Event
	kind  domain.ErrorKind
	msg   string
}

func run(t *testing.T, rows []row) {
	t.Helper()
	for _, c := range rows {
		t.Run(c.name, func(t *testing.T) {
			decidertest.Decide(t, host.Decider, "h-1", c.given, c.when, decidertest.Expect(c.want, c.kind, c.msg))
		})
	}
}

func TestRegister(t *testing.T) {
	register := func(s host.Spec) host.Register { return host.Register{ID: "h-1", Spec: s, At: t1} }
	bigger := spec(func(s *host.Spec) { s.RAMMiB *= 2 })
	custom := host.Ratios{CPU: 8, RAM: 1.5, Disk: 1}
	run(t, []row{
		{"first registration gets default ratios", none, register(node), []domain.Event{&host.Registered{ID: "h-1", Spec: node, Ratios: &def, At: t1}}, 0, ""},
		{"first registration with ratios", none, host.Register{ID: "h-1", Spec: node, Ratios: &custom, At: t1}, []domain.Event{&host.Registered{ID: "h-1", Spec: node, Ratios: &custom, At: t1}}, 0, ""},
		{"same spec again emits nothing", registered, register(node), nil, 0, ""},
		{"changed spec is registered again", registered, register(bigger), []domain.Event{&host.Registered{ID: "h-1", Spec: bigger, At: t1}}, 0, ""},
		{"changed traits are registered again", registered, register(spec(func(s *host.Spec) { s.Traits = nil })), []domain.Event{&host.Registered{ID: "h-1", Spec: spec(func(s *host.Spec) { s.Traits = nil }), At: t1}}, 0, ""},
		{"no vcpus", none, register(spec(func(s *host.Spec) { s.VCPUs = 0 })), nil, domain.Invalid, "vcpus must be positive, got 0"},
		{"no ram", none, register(spec(func(s *host.Spec) { s.RAMMiB = 0 })), nil, domain.Invalid, "ram_mib must be positive, got 0"},
		{"negative disk", none, register(spec(func(s *host.Spec) { s.DiskGiB = -1 })), nil, domain.Invalid, "disk_gib must not be negative"},
		{"bad name", none, register(spec(func(s *host.Spec) { s.Name = "a\tb" })), nil, domain.Invalid, "control characters"},
		{"uuid name", none, register(spec(func(s *host.Spec) { s.Name = "3f2504e0-4f89-11d3-9a0c-0305e82c3301" })), nil, domain.Invalid, "must not be a UUID"},
		{"escape in cpu model", none, register(spec(func(s *host.Spec) { s.CPUModel = "Xeon\x1b[2J" })), nil, domain.Invalid, "host node-1: cpu model must not contain control characters"},
		{"override in a trait", none, register(spec(func(s *host.Spec) { s.Traits = []string{"gpu\u202e"} })), nil, domain.Invalid, "bidirectional control characters (found U+202E)"},
		{"bad ratio", none, host.Register{ID: "h-1", Spec: node, Ratios: &host.Ratios{CPU: 0, RAM: 1, Disk: 1}, At: t1}, nil, domain.Invalid, "cpu overcommit ratio"},
		{"a removed host registers again afresh", with(registered, &host.Removed{At: t0}), register(node), []domain.Event{&host.Registered{ID: "h-1", Spec: node, Ratios: &def, At: t1}}, 0, ""},
	})
}

func TestAdministrativeState(t *testing.T) {
	disabled := with(registered, &host.Disabled{Reason: "bad fan", At: t0})
	maint := with(registered, &host.MaintenanceStarted{Reason: "bios", At: t0})
	run(t, []row{
		{"disable", registered, host.Disable{Reason: "bad fan", At: t1}, []domain.Event{&host.Disabled{Reason: "bad fan", At: t1}}, 0, ""},
		{"disable twice changes nothing", disabled, host.Disable{Reason: "bad fan", At: t1}, nil, 0, ""},
		{"disable again with a new reason records it", disabled, host.Disable{Reason: "bad DIMM", At: t1}, []domain.Event{&host.Disabled{Reason: "bad DIMM", At: t1}}, 0, ""},
		{"enable", disabled, host.Enable{At: t1}, []domain.Event{&host.Enabled{At: t1}}, 0, ""},
		{"enable an enabled host changes nothing", registered, host.Enable{At: t1}, nil, 0, ""},
		{"maintenance on", registered, host.SetMaintenance{On: true, Reason: "bios", At: t1}, []domain.Event{&host.MaintenanceStarted{Reason: "bios", At: t1}}, 0, ""},
		{"escape sequence in a disable reason", registered, host.Disable{Reason: "fan\x1b]8;;http://x\x07", At: t1}, nil, domain.Invalid, "reason must not contain control characters (found U+001B)"},
		{"newline in a disable reason", registered, host.Disable{Reason: "ok\nforged line", At: t1}, nil, domain.Invalid, "reason must not contain control characters"},
		{"override in a maintenance reason", registered, host.SetMaintenance{On: true, Reason: "bios\u202e", At: t1}, nil, domain.Invalid, "reason must not contain bidirectional control characters"},
		{"maintenance off", maint, host.SetMaintenance{At: t1}, []domain.Event{&host.MaintenanceEnded{At: t1}}, 0, ""},
		{"unknown host", none, host.Enable{At: t1}, nil, domain.NotFound, "host h-1 not found"},
		{"down", registered, host.MarkDown{LastSeen: t0, At: t1}, []domain.Event{&host.WentDown{LastSeen: t0, At: t1}}, 0, ""},
		{"down twice changes nothing", with(registered, &host.WentDown{At: t0}), host.MarkDown{At: t1}, nil, 0, ""},
		{"up", with(registered, &host.WentDown{At: t0}), host.MarkUp{At: t1}, []domain.Event{&host.CameUp{At: t1}}, 0, ""},
		{"up when up changes nothing", registered, host.MarkUp{At: t1}, nil, 0, ""},
	})
}

func TestClaims(t *testing.T) {
	claimed := with(registered, &host.Claimed{Server: "s-1", Resources: small, At: t0})
	claim := func(server string, r host.Resources) host.Claim {
		return host.Claim{Server: server, Resources: r, Operation: "op", At: t1}
	}
	run(t, []row{
		{"claim", registered, claim("s-1", small), []domain.Event{&host.Claimed{Server: "s-1", Resources: small, Operation: "op", At: t1}}, 0, ""},
		{"claim again is a no-op", claimed, claim("s-1", small), nil, 0, ""},
		{"another claim for the same server", claimed, claim("s-1", host.Resources{VCPUs: 1}), nil, domain.Conflict, "already holds a different claim"},
		{"RAM is not overcommitted", registered, claim("s-2", host.Resources{RAMMiB: 65537}), nil, domain.Conflict, "host node-1 has 64 vCPUs, 65536 MiB RAM, 500 GiB disk free"},
		{"CPU is overcommitted 4x", registered, claim("s-2", host.Resources{VCPUs: 64}), []domain.Event{&host.Claimed{Server: "s-2", Resources: host.Resources{VCPUs: 64}, Operation: "op", At: t1}}, 0, ""},
		{"beyond 4x CPU", registered, claim("s-2", host.Resources{VCPUs: 65}), nil, domain.Conflict, "not 65 vCPUs"},
		{"disabled host takes no claim", with(registered, &host.Disabled{Reason: "bad fan", At: t0}), claim("s-2", small), nil, domain.Conflict, "host node-1 is disabled (bad fan)"},
		{"maintenance takes no claim", with(registered, &host.MaintenanceStarted{At: t0}), claim("s-2", small), nil, domain.Conflict, "in maintenance"},
		{"down host takes no claim", with(registered, &host.WentDown{At: t0}), claim("s-2", small), nil, domain.Conflict, "is down"},
		{"negative claim", registered, claim("s-2", host.Resources{VCPUs: -1}), nil, domain.Invalid, "non-negative"},
		{"release", claimed, host.Release{Server: "s-1", Reason: "deleted", At: t1}, []domain.Event{&host.Released{Server: "s-1", Resources: small, Reason: "deleted", At: t1}}, 0, ""},
		{"release twice is a no-op", registered, host.Release{Server: "s-1", At: t1}, nil, 0, ""},
		{"remove with servers", claimed, host.Remove{At: t1}, nil, domain.Conflict, "still holds 1 server(s)"},
		{"remove empty", registered, host.Remove{At: t1}, []domain.Event{&host.Removed{At: t1}}, 0, ""},
		{"ratios below use", with(registered, &host.Claimed{Server: "s-1", Resources: host.Resources{VCPUs: 40}, At: t0}), host.SetRatios{Ratios: host.Ratios{CPU: 2, RAM: 1, Disk: 1}.Patch(), At: t1}, nil, domain.Conflict, "more than"},
		{"ratios change", registered, host.SetRatios{Ratios: host.Ratios{CPU: 2, RAM: 1, Disk: 1}.Patch(), At: t1}, []domain.Event{&host.RatiosChanged{Ratios: host.Ratios{CPU: 2, RAM: 1, Disk: 1}, At: t1}}, 0, ""},
	})
}

// A partial change of ratios is merged on the host's current ratios, so a
// client that changes one ratio never puts back a stale value of another.
func TestRatiosPatch(t *testing.T) {
	two, half := 2.0, 0.5
	ramChanged := with(registered, &host.RatiosChanged{Ratios: host.Ratios{CPU: 4, RAM: 1.5, Disk: 1}, At: t0})
	run(t, []row{
		{"cpu alone keeps ram and disk", ramChanged, host.SetRatios{Ratios: host.RatiosPatch{CPU: &two}, At: t1},
			[]domain.Event{&host.RatiosChanged{Ratios: host.Ratios{CPU: 2, RAM: 1.5, Disk: 1}, At: t1}}, 0, ""},
		{"the current value again changes nothing", ramChanged, host.SetRatios{Ratios: host.RatiosPatch{Disk: &def.Disk}, At: t1}, nil, 0, ""},
		{"nothing named", registered, host.SetRatios{At: t1}, nil, domain.Invalid, "name at least one"},
		{"a bad ratio among good ones", registered, host.SetRatios{Ratios: host.RatiosPatch{CPU: &two, RAM: new(float64)}, At: t1}, nil, domain.Invalid, "ram overcommit ratio must be above 0"},
		{"the merge must still fit", with(registered, &host.Claimed{Server: "s-1", Resources: host.Resources{RAMMiB: 65536}, At: t0}),
			host.SetRatios{Ratios: host.RatiosPatch{RAM: &half}, At: t1}, nil, domain.Conflict, "more than"},
	})
}

// A host is in one availability zone: it records every host aggregate it
// joins, with the aggregate's zone, and refuses a second zone.
func TestOneZonePerHost(t *testing.T) {
	join := func(agg, name, zone, id string) host.JoinAggregate {
		return host.JoinAggregate{Aggregate: agg, Name: name, Zone: zone, Join: id, At: t1}
	}
	joined := func(agg, name, zone, id string) *host.AggregateJoined {
		return &host.AggregateJoined{Aggregate: agg, Name: name, Zone: zone, Join: id, At: t1}
	}
	inAZ1 := with(registered, &host.AggregateJoined{Aggregate: "a-1", Name: "rack-1", Zone: "az1", Join: "j-1", At: t0})
	inPlain := with(registered, &host.AggregateJoined{Aggregate: "a-3", Name: "ssd", Join: "j-3", At: t0})
	run(t, []row{
		{"join a zone", registered, join("a-1", "rack-1", "az1", "j-1"), []domain.Event{joined("a-1", "rack-1", "az1", "j-1")}, 0, ""},
		{"join again with the same id changes nothing", inAZ1, join("a-1", "rack-1", "az1", "j-1"), nil, 0, ""},
		{"join the same aggregate anew", inAZ1, join("a-1", "rack-1", "az1", "j-9"), []domain.Event{joined("a-1", "rack-1", "az1", "j-9")}, 0, ""},
		{"another aggregate of the same zone", inAZ1, join("a-2", "rack-2", "az1", "j-2"), []domain.Event{joined("a-2", "rack-2", "az1", "j-2")}, 0, ""},
		{"an aggregate of no zone", inAZ1, join("a-3", "ssd", "", "j-3"), []domain.Event{joined("a-3", "ssd", "", "j-3")}, 0, ""},
		{"a zone after an aggregate of none", inPlain, join("a-1", "rack-1", "az1", "j-1"), []domain.Event{joined("a-1", "rack-1", "az1", "j-1")}, 0, ""},
		{"a second zone", inAZ1, join("a-2", "rack-2", "az2", "j-2"), nil, domain.Conflict, "host node-1 is already in availability zone az1 (aggregate rack-1); a host is in one zone"},
		{"a second zone after leaving the first", with(inAZ1, &host.AggregateLeft{Aggregate: "a-1", Join: "j-1", At: t0}), join("a-2", "rack-2", "az2", "j-2"),
			[]domain.Event{joined("a-2", "rack-2", "az2", "j-2")}, 0, ""},
		{"no join id", registered, join("a-1", "rack-1", "az1", ""), nil, domain.Invalid, "join id"},
		{"unknown host", none, join("a-1", "rack-1", "az1", "j-1"), nil, domain.NotFound, "host h-1 not found"},
		{"removed host", with(registered, &host.Removed{At: t0}), join("a-1", "rack-1", "az1", "j-1"), nil, domain.NotFound, "not found"},
		{"leave", inAZ1, host.LeaveAggregate{Aggregate: "a-1", Join: "j-1", At: t1}, []domain.Event{&host.AggregateLeft{Aggregate: "a-1", Join: "j-1", At: t1}}, 0, ""},
		{"leave keeps a newer joining", inAZ1, host.LeaveAggregate{Aggregate: "a-1", Join: "j-0", At: t1}, nil, 0, ""},
		{"leave what was never joined", registered, host.LeaveAggregate{Aggregate: "a-1", Join: "j-1", At: t1}, nil, 0, ""},
		{"a removed host leaves", with(inAZ1, &host.Removed{At: t0}), host.LeaveAggregate{Aggregate: "a-1", Join: "j-1", At: t1},
			[]domain.Event{&host.AggregateLeft{Aggregate: "a-1", Join: "j-1", At: t1}}, 0, ""},
		{"a host registered again keeps its aggregates", with(inAZ1, &host.Removed{At: t0}, &host.Registered{ID: "h-1", Spec: node, Ratios: &def, At: t0}),
			join("a-2", "rack-2", "az2", "j-2"), nil, domain.Conflict, "already in availability zone az1"},
	})
}

func TestEvolveDoesNotChangeEarlierStates(t *testing.T) {
	a := host.Decider.Fold(host.State{}, with(registered, &host.Claimed{Server: "s-1", Resources: small}))
	b := host.Evolve(a, &host.Claimed{Server: "s-2", Resources: small})
	if len(a.Claims) != 1 || len(b.Claims) != 2 || b.Used != small.Add(small) {
		t.Fatalf("a=%+v b=%+v", a.Claims, b.Claims)
	}
}

// For any sequence of claims and releases, no host ever exceeds capacity ×
// ratio, and used capacity always equals the sum of live claims.
func TestClaimsNeverOvercommit(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for seq := 0; seq < 2000; seq++ {
		ratios := host.Ratios{CPU: float64(1 + rng.IntN(8)), RAM: 0.5 + rng.Float64(), Disk: 1}
		sp := host.Spec{Name: "h", Driver: "fake", VCPUs: 1 + rng.IntN(64), RAMMiB: 1024 * (1 + rng.IntN(256)), DiskGiB: rng.IntN(2000)}
		s := host.Decider.Fold(host.Decider.Initial("h"), []domain.Event{&host.Registered{ID: "h", Spec: sp, Ratios: &ratios}})
		for step := 0; step < 200; step++ {
			var cmd host.Command
			server := string(rune('a' + rng.IntN(20)))
			switch rng.IntN(10) {
			case 0, 1, 2, 3, 4, 5:
				cmd = host.Claim{Server: server, Resources: host.Resources{VCPUs: rng.IntN(16), RAMMiB: rng.IntN(32768), DiskGiB: rng.IntN(200)}}
			case 6, 7, 8:
				cmd = host.Release{Server: server}
			case 9:
				cmd = host.SetRatios{Ratios: host.Ratios{CPU: float64(1 + rng.IntN(8)), RAM: 0.5 + rng.Float64(), Disk: 1}.Patch()}
			}
			evs, err := host.Decide(s, cmd)
			if err != nil {
				continue
			}
			s = host.Decider.Fold(s, evs)
			var sum host.Resources
			for _, r := range s.Claims {
				sum = sum.Add(r)
			}
			if sum != s.Used {
				t.Fatalf("sequence %d step %d: used %+v != sum of claims %+v", seq, step, s.Used, sum)
			}
			if !s.Used.Fits(s.Limit()) {
				t.Fatalf("sequence %d step %d: used %+v exceeds limit %+v", seq, step, s.Used, s.Limit())
			}
		}
	}
}

func TestUnknownGuests(t *testing.T) {
	seen := with(registered, &host.UnknownGuestsObserved{Guests: []string{"db", "legacy"}, At: t0})
	run(t, []row{
		{"first seen, sorted", registered, host.ObserveUnknownGuests{Guests: []string{"legacy", "db"}, At: t1},
			[]domain.Event{&host.UnknownGuestsObserved{Guests: []string{"db", "legacy"}, At: t1}}, 0, ""},
		{"the same set again changes nothing", seen, host.ObserveUnknownGuests{Guests: []string{"legacy", "db"}, At: t1}, nil, 0, ""},
		{"one gone", seen, host.ObserveUnknownGuests{Guests: []string{"db"}, At: t1},
			[]domain.Event{&host.UnknownGuestsObserved{Guests: []string{"db"}, At: t1}}, 0, ""},
		{"all gone", seen, host.ObserveUnknownGuests{At: t1},
			[]domain.Event{&host.UnknownGuestsObserved{Guests: []string{}, At: t1}}, 0, ""},
		{"none, never seen", registered, host.ObserveUnknownGuests{At: t1}, nil, 0, ""},
		{"an escape in a name", registered, host.ObserveUnknownGuests{Guests: []string{"x\x1b[2J"}, At: t1}, nil, domain.Invalid, "guest name must not contain control characters"},
		{"unknown host", none, host.ObserveUnknownGuests{Guests: []string{"db"}, At: t1}, nil, domain.NotFound, "not found"},
	})
}
