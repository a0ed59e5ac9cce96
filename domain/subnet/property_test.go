package subnet_test

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/keel-cloud/keel/domain"
	dt "github.com/keel-cloud/keel/domain/decidertest"
	"github.com/keel-cloud/keel/domain/subnet"
)

// commit decides c on s and, when accepted, folds the events in: what the
// command handler does, one command at a time per subnet, however many
// requests race (the losers of an append decide again on the new state).
func commit(s subnet.State, c subnet.Command) (subnet.State, []domain.Event, error) {
	evs, err := subnet.Decide(s, c)
	if err != nil {
		return s, nil, err
	}
	return subnet.Decider.Fold(s, evs), evs, nil
}

// 300 port creates on a /24: 253 get an address, each a different one,
// never the network, gateway or broadcast address; the other 47 are told
// "subnet exhausted", naming the subnet and its CIDR.
func TestExhaustingA24(t *testing.T) {
	s := dt.Fold(subnet.Decider, "s-1", created)
	got := map[string]string{}
	var refused []error
	for i := range 300 {
		key := fmt.Sprintf("port-%d", i)
		next, evs, err := commit(s, subnet.Allocate{Key: key, At: t0})
		if err != nil {
			refused = append(refused, err)
			continue
		}
		s = next
		ip := evs[0].(*subnet.AddressAllocated).IP
		if other, dup := got[ip]; dup {
			t.Fatalf("%s got %s, which %s holds", key, ip, other)
		}
		got[ip] = key
	}
	if len(got) != 253 || len(refused) != 47 || s.InUse != 253 {
		t.Fatalf("%d allocated, %d refused, %d in use; want 253, 47, 253", len(got), len(refused), s.InUse)
	}
	for _, ip := range []string{"10.0.0.0", "10.0.0.1", "10.0.0.255"} {
		if _, ok := got[ip]; ok {
			t.Errorf("%s was handed out", ip)
		}
	}
	for _, err := range refused {
		msg := err.Error()
		if domain.KindOf(err) != domain.Conflict || !strings.Contains(msg, "subnet exhausted") || !strings.Contains(msg, "web") || !strings.Contains(msg, "10.0.0.0/24") {
			t.Fatalf("refusal %q (kind %d): want a conflict saying subnet exhausted and naming web and 10.0.0.0/24", msg, domain.KindOf(err))
		}
	}
}

// Once exhausted, the addresses handed out next are exactly the ones given
// back, oldest cursor position first, and then the subnet is exhausted again.
func TestReleasedAddressesAreTheOnlyOnesReused(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 24))
	s := dt.Fold(subnet.Decider, "s-1", created)
	for i := range 253 {
		s, _, _ = commit(s, subnet.Allocate{Key: fmt.Sprintf("port-%d", i), At: t0})
	}
	var released []string
	for _, host := range rng.Perm(253)[:40] {
		ip := fmt.Sprintf("10.0.0.%d", host+2)
		var err error
		if s, _, err = commit(s, subnet.Release{Key: "port", IP: ip, At: t0}); err != nil {
			t.Fatal(err)
		}
		released = append(released, ip)
	}
	var again []string
	for i := range 40 {
		next, evs, err := commit(s, subnet.Allocate{Key: fmt.Sprintf("new-%d", i), At: t0})
		if err != nil {
			t.Fatalf("allocation %d after 40 releases: %v", i, err)
		}
		s, again = next, append(again, evs[0].(*subnet.AddressAllocated).IP)
	}
	byAddr := func(a, b string) int { return netip.MustParseAddr(a).Compare(netip.MustParseAddr(b)) }
	slices.SortFunc(released, byAddr)
	if !slices.Equal(again, released) {
		t.Fatalf("reallocated %v\nwant the released ones, lowest first after wrapping: %v", again, released)
	}
	if _, _, err := commit(s, subnet.Allocate{Key: "one-more", At: t0}); err == nil || !strings.Contains(err.Error(), "subnet exhausted") {
		t.Fatalf("after reusing every released address: %v, want subnet exhausted", err)
	}
}

// A random walk of allocations (next free and fixed) and releases agrees
// with a plain map of who holds what at every step.
func TestRandomWalkMatchesAModel(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 99))
		s := dt.Fold(subnet.Decider, "s-1", createdWith(func(e *subnet.Created) {
			e.Pools = []subnet.Pool{{Start: "10.0.0.10", End: "10.0.0.40"}, {Start: "10.0.0.200", End: "10.0.0.210"}}
		}))
		inPool := func(h int) bool { return (h >= 10 && h <= 40) || (h >= 200 && h <= 210) }
		held := map[string]bool{}
		for step := range 2000 {
			ip := fmt.Sprintf("10.0.0.%d", rng.IntN(256))
			var c subnet.Command
			switch rng.IntN(3) {
			case 0:
				c = subnet.Allocate{Key: "k", At: t0}
			case 1:
				c = subnet.Allocate{Key: "k", IP: ip, At: t0}
			default:
				c = subnet.Release{Key: "k", IP: ip, At: t0}
			}
			next, evs, err := commit(s, c)
			checkStep(t, fmt.Sprintf("seed %d step %d %+v", seed, step, c), c, evs, err, held, inPool)
			s = next
			if s.InUse != len(held) || s.InUse != popcount(s.Used) {
				t.Fatalf("seed %d step %d: InUse %d, bits %d, model %d", seed, step, s.InUse, popcount(s.Used), len(held))
			}
		}
	}
}

func checkStep(t *testing.T, what string, c subnet.Command, evs []domain.Event, err error, held map[string]bool, inPool func(int) bool) {
	t.Helper()
	switch c := c.(type) {
	case subnet.Allocate:
		want := len(held) < 42
		if c.IP != "" {
			var h int
			fmt.Sscanf(c.IP, "10.0.0.%d", &h)
			want = inPool(h) && !held[c.IP]
		}
		if (err == nil) != want {
			t.Fatalf("%s: accepted=%v, want %v (%v)", what, err == nil, want, err)
		}
		if err == nil {
			ip := evs[0].(*subnet.AddressAllocated).IP
			if held[ip] || (c.IP != "" && ip != c.IP) {
				t.Fatalf("%s: handed out %s, held already or not the one asked for", what, ip)
			}
			held[ip] = true
		}
	case subnet.Release:
		if err != nil || (len(evs) == 1) != held[c.IP] {
			t.Fatalf("%s: %v %v, held %v", what, evs, err, held[c.IP])
		}
		delete(held, c.IP)
	}
}

func popcount(used []uint64) int {
	n := 0
	for _, w := range used {
		n += bits.OnesCount64(w)
	}
	return n
}

// An allocation leaves the state it was decided on as it was, so the
// handler's cache can keep it.
func TestEvolveCopiesTheAddressMap(t *testing.T) {
	before := dt.Fold(subnet.Decider, "s-1", one)
	after := subnet.Evolve(before, &subnet.AddressAllocated{Key: "port-2", IP: "10.0.0.3", At: t0})
	after = subnet.Evolve(after, &subnet.AddressReleased{Key: "port-1", IP: "10.0.0.2", At: t0})
	if before.InUse != 1 || popcount(before.Used) != 1 || before.Used[0] != 1<<2 {
		t.Fatalf("the earlier state changed: %d in use, map %x", before.InUse, before.Used[0])
	}
	if after.InUse != 1 || after.Used[0] != 1<<3 {
		t.Fatalf("after: %d in use, map %x", after.InUse, after.Used[0])
	}
}

// A /16 hands out its 65,533 pool addresses, then is exhausted.
func TestA16HandsOutEveryPoolAddress(t *testing.T) {
	s := slash16(t)
	for i := range 65533 {
		evs, err := subnet.Decide(s, subnet.Allocate{Key: "k", At: t0})
		if err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
		s = subnet.Evolve(s, evs[0])
	}
	if _, err := subnet.Decide(s, subnet.Allocate{Key: "k", At: t0}); err == nil || !strings.Contains(err.Error(), "subnet exhausted: subnet big (172.16.0.0/16)") {
		t.Fatalf("got %v, want subnet exhausted", err)
	}
}

func slash16(tb testing.TB) subnet.State {
	evs, err := subnet.Decide(subnet.Decider.Initial("s-16"), subnet.Create{ID: "s-16", Network: "n-1", Project: "p-1", Name: "big", CIDR: "172.16.0.0/16", At: t0})
	if err != nil {
		tb.Fatal(err)
	}
	return subnet.Decider.Fold(subnet.Decider.Initial("s-16"), evs)
}

// BenchmarkAllocateOn16 is one commit's worth of work on a subnet: decide
// an allocation and fold it in (which copies the 8 KiB address map), on a
// /16 half full, against the same on a /24 as the baseline. Each op
// allocates and then releases, so the subnet never fills up.
func BenchmarkAllocateOn16(b *testing.B) {
	for _, c := range []struct {
		name string
		s    subnet.State
	}{
		{"24", dt.Fold(subnet.Decider, "s-1", created)},
		{"16", slash16(b)},
	} {
		b.Run("cidr="+c.name, func(b *testing.B) {
			s := c.s
			for range len(s.Used) * 32 { // half full
				evs, _ := subnet.Decide(s, subnet.Allocate{Key: "k", At: t0})
				s = subnet.Evolve(s, evs[0])
			}
			b.ReportAllocs()
			for b.Loop() {
				evs, err := subnet.Decide(s, subnet.Allocate{Key: "k", At: t0})
				if err != nil {
					b.Fatal(err)
				}
				s = subnet.Evolve(s, evs[0])
				ip := evs[0].(*subnet.AddressAllocated).IP
				s = subnet.Evolve(s, &subnet.AddressReleased{Key: "k", IP: ip, At: t0})
			}
		})
	}
}
