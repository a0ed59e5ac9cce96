package subnet

import (
	"math/bits"
	"slices"

	"github.com/keel-cloud/keel/domain"
)

// ipam is what an allocation needs of a subnet, as numbers.
type ipam struct {
	r       addrRange
	gateway int      // -1: none
	pools   [][2]int // offsets, both ends included, sorted
}

// layout reads the subnet's recorded CIDR, gateway and pools. They were
// checked when the subnet was created, so an error here means a state
// that no history of this package folds into.
func (s State) layout() (ipam, error) {
	r, err := parseRange(s.CIDR)
	if err != nil || len(s.Used) != (r.size+63)/64 {
		return ipam{}, domain.Conflictf("subnet %s records an address map that does not fit its cidr %q", s.label(), s.CIDR)
	}
	l := ipam{r: r, gateway: -1}
	if off, ok := r.offsetOf(s.Gateway); ok {
		l.gateway = off
	}
	for _, p := range s.Pools {
		lo, ok1 := r.offsetOf(p.Start)
		hi, ok2 := r.offsetOf(p.End)
		if ok1 && ok2 && lo <= hi {
			l.pools = append(l.pools, [2]int{lo, hi})
		}
	}
	slices.SortFunc(l.pools, func(a, b [2]int) int { return a[0] - b[0] })
	return l, nil
}

func (l ipam) inPool(off int) bool {
	for _, p := range l.pools {
		if off >= p[0] && off <= p[1] {
			return true
		}
	}
	return false
}

func decideAllocate(s State, c Allocate) ([]domain.Event, error) {
	if c.Key == "" {
		return nil, domain.Invalidf("an address is allocated to a key: the id of the port or floating IP that will hold it")
	}
	l, err := s.layout()
	if err != nil {
		return nil, err
	}
	if c.Gateway {
		return allocateGateway(s, l, c)
	}
	if c.IP != "" {
		return allocateFixed(s, l, c)
	}
	off, ok := nextFree(s.Used, l.pools, s.Cursor)
	if !ok {
		return nil, domain.Conflictf("subnet exhausted: subnet %s (%s) has no free address left in its allocation pools (%d in use)", s.label(), s.CIDR, s.InUse)
	}
	return []domain.Event{&AddressAllocated{Key: c.Key, IP: l.r.addr(off), At: c.At}}, nil
}

// allocateGateway hands out the gateway address to a router's interface.
func allocateGateway(s State, l ipam, c Allocate) ([]domain.Event, error) {
	switch {
	case l.gateway < 0:
		return nil, domain.Conflictf("subnet %s (%s) has no gateway address for a router's interface", s.label(), s.CIDR)
	case c.IP != "" && c.IP != s.Gateway:
		return nil, domain.Invalidf("address %s is not the gateway %s of subnet %s", c.IP, s.Gateway, s.label())
	case isSet(s.Used, l.gateway):
		return nil, domain.Conflictf("the gateway %s of subnet %s (%s) is already in use: a router has an interface on it", s.Gateway, s.label(), s.CIDR)
	}
	return []domain.Event{&AddressAllocated{Key: c.Key, IP: s.Gateway, At: c.At}}, nil
}

// allocateFixed hands out the address a caller asked for.
func allocateFixed(s State, l ipam, c Allocate) ([]domain.Event, error) {
	if _, err := parseIPv4("address", c.IP); err != nil {
		return nil, err
	}
	off, ok := l.r.offsetOf(c.IP)
	switch {
	case !ok:
		return nil, domain.Invalidf("address %s is not in subnet %s (%s)", c.IP, s.label(), s.CIDR)
	case off == l.gateway:
		return nil, domain.Invalidf("address %s is the gateway of subnet %s (%s)", c.IP, s.label(), s.CIDR)
	case off == 0 || off == l.r.size-1:
		return nil, domain.Invalidf("address %s is the network or broadcast address of subnet %s (%s)", c.IP, s.label(), s.CIDR)
	case !l.inPool(off):
		return nil, domain.Invalidf("address %s is outside the allocation pools of subnet %s (%s)", c.IP, s.label(), s.CIDR)
	case isSet(s.Used, off):
		return nil, domain.Conflictf("address %s is already in use on subnet %s (%s)", c.IP, s.label(), s.CIDR)
	}
	return []domain.Event{&AddressAllocated{Key: c.Key, IP: l.r.addr(off), At: c.At}}, nil
}

func decideRelease(s State, c Release) ([]domain.Event, error) {
	if c.Key == "" {
		return nil, domain.Invalidf("a release names the key that held the address")
	}
	if _, err := parseIPv4("address", c.IP); err != nil {
		return nil, err
	}
	off, ok := s.offset(c.IP)
	if !ok || !isSet(s.Used, off) {
		return nil, nil
	}
	return []domain.Event{&AddressReleased{Key: c.Key, IP: c.IP, At: c.At}}, nil
}

// nextFree returns the lowest free offset in the pools after cursor, or,
// when there is none, the lowest free one at or before it (wrapping round).
// Going on from the last address handed out, as Neutron does, keeps a
// just-released address out of use as long as possible, so that a stale
// ARP entry or a firewall rule for a deleted port does not meet a new one.
func nextFree(used []uint64, pools [][2]int, cursor int) (int, bool) {
	for _, p := range pools {
		if off, ok := firstFree(used, max(p[0], cursor+1), p[1]); ok {
			return off, true
		}
	}
	for _, p := range pools {
		if off, ok := firstFree(used, p[0], min(p[1], cursor)); ok {
			return off, true
		}
	}
	return 0, false
}

// firstFree returns the lowest offset in [lo, hi] whose bit is clear,
// a word at a time.
func firstFree(used []uint64, lo, hi int) (int, bool) {
	for i := lo; i <= hi; {
		w := i / 64
		if w >= len(used) {
			return 0, false
		}
		if free := ^used[w] >> (i % 64); free != 0 {
			off := i + bits.TrailingZeros64(free)
			return off, off <= hi
		}
		i = (w + 1) * 64
	}
	return 0, false
}

func isSet(used []uint64, off int) bool {
	return off/64 < len(used) && used[off/64]&(1<<(off%64)) != 0
}

// withBit returns a copy of used with the bit of off set or cleared: the
// earlier state, which the handler's cache may hold, is left as it was.
func withBit(used []uint64, off int, set bool) []uint64 {
	out := slices.Clone(used)
	if set {
		out[off/64] |= 1 << (off % 64)
	} else {
		out[off/64] &^= 1 << (off % 64)
	}
	return out
}
