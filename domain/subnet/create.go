package subnet

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/keel-cloud/keel/domain"
)

// Bounds of a subnet's settings.
const (
	// MinPrefix: a /16 has 65,536 addresses, an 8 KiB address map that
	// every allocation commit copies; larger ones would make each commit
	// cost more than the address it records.
	MinPrefix = 16
	// MaxPrefix: a /30 has two usable addresses, a gateway and one port;
	// a /31 or /32 has none once the network and broadcast addresses are
	// set apart.
	MaxPrefix = 30
	MaxDNS    = 5
	MaxRoutes = 20
	MaxPools  = 16
)

// addrRange is an IPv4 network as numbers: its first address and size.
type addrRange struct {
	prefix netip.Prefix
	base   uint32
	size   int
}

func parseRange(cidr string) (addrRange, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil || !p.Addr().Is4() {
		return addrRange{}, fmt.Errorf("not an IPv4 network")
	}
	return addrRange{prefix: p, base: toUint(p.Addr()), size: 1 << (32 - p.Bits())}, nil
}

func toUint(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func fromUint(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// addr is the address at offset off.
func (r addrRange) addr(off int) string { return fromUint(r.base + uint32(off)).String() }

// offsetOf returns the offset of ip in r, if ip is an IPv4 address in r.
func (r addrRange) offsetOf(ip string) (int, bool) {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is4() || !r.prefix.Contains(a) {
		return 0, false
	}
	return int(toUint(a) - r.base), true
}

// offset returns the offset of ip in the subnet's CIDR.
func (s State) offset(ip string) (int, bool) {
	r, err := parseRange(s.CIDR)
	if err != nil {
		return 0, false
	}
	off, ok := r.offsetOf(ip)
	return off, ok && off/64 < len(s.Used)
}

// parseIPv4 reads one address a user gave.
func parseIPv4(field, ip string) (netip.Addr, error) {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is4() {
		return netip.Addr{}, domain.Invalidf("%s %q is not an IPv4 address such as 10.0.0.5", field, ip)
	}
	return a, nil
}

// usable reads an address a user gave that must be a host address of r.
func (r addrRange) usable(field, ip string) (int, error) {
	if _, err := parseIPv4(field, ip); err != nil {
		return 0, err
	}
	off, ok := r.offsetOf(ip)
	switch {
	case !ok:
		return 0, domain.Invalidf("%s %s is not in %s", field, ip, r.prefix)
	case off == 0:
		return 0, domain.Invalidf("%s %s is the network address of %s", field, ip, r.prefix)
	case off == r.size-1:
		return 0, domain.Invalidf("%s %s is the broadcast address of %s", field, ip, r.prefix)
	}
	return off, nil
}

func checkCIDR(cidr string) (addrRange, error) {
	p, err := netip.ParsePrefix(cidr)
	switch {
	case err != nil:
		return addrRange{}, domain.Invalidf("cidr %q is not an IPv4 network such as 10.0.0.0/24", cidr)
	case !p.Addr().Is4():
		return addrRange{}, domain.Invalidf("cidr %s is IPv6; only IPv4 subnets are supported for now", cidr)
	case p.Masked() != p:
		return addrRange{}, domain.Invalidf("cidr %s has host bits set; did you mean %s?", cidr, p.Masked())
	case p.Bits() < MinPrefix:
		return addrRange{}, domain.Invalidf("cidr %s is a /%d; a subnet may be at most a /%d (65,536 addresses), so that its address map stays small: split it into several subnets", cidr, p.Bits(), MinPrefix)
	case p.Bits() > MaxPrefix:
		return addrRange{}, domain.Invalidf("cidr %s is a /%d; a subnet must be at least a /%d: a smaller one has no address left for a port once its network and broadcast addresses and its gateway are set apart", cidr, p.Bits(), MaxPrefix)
	}
	return parseRange(cidr)
}

func decideCreate(s State, c Create) ([]domain.Event, error) {
	if s.Exists {
		return nil, domain.Conflictf("subnet %s already exists", s.ID)
	}
	if c.Network == "" || c.Project == "" {
		return nil, domain.Invalidf("a subnet belongs to a network and a project")
	}
	if c.Name != "" {
		if err := domain.CheckName("name", c.Name); err != nil {
			return nil, err
		}
	}
	r, err := checkCIDR(c.CIDR)
	if err != nil {
		return nil, err
	}
	gw, err := checkGateway(r, c.Gateway)
	if err != nil {
		return nil, err
	}
	pools, err := checkPools(r, gw, c.Pools)
	if err != nil {
		return nil, err
	}
	if err := checkDNS(c.DNS); err != nil {
		return nil, err
	}
	if err := checkRoutes(r, c.Routes); err != nil {
		return nil, err
	}
	ev := &Created{ID: c.ID, Network: c.Network, Project: c.Project, Name: c.Name, CIDR: c.CIDR, DHCP: c.DHCP == nil || *c.DHCP,
		DNS: slices.Clone(c.DNS), Pools: pools, Routes: slices.Clone(c.Routes), CreatedAt: c.At}
	if gw >= 0 {
		ev.Gateway = r.addr(gw)
	}
	return []domain.Event{ev}, nil
}

// checkGateway returns the gateway's offset, or -1 for none.
func checkGateway(r addrRange, gw string) (int, error) {
	switch gw {
	case "":
		return 1, nil
	case NoGateway:
		return -1, nil
	}
	if _, err := netip.ParseAddr(gw); err != nil {
		return 0, domain.Invalidf("gateway %q is not an IPv4 address such as 10.0.0.1, or %q", gw, NoGateway)
	}
	return r.usable("gateway", gw)
}

// checkPools returns the pools to record: the ones given, sorted, or every
// usable address but the gateway.
func checkPools(r addrRange, gw int, pools []Pool) ([]Pool, error) {
	if len(pools) == 0 {
		return defaultPools(r, gw), nil
	}
	if len(pools) > MaxPools {
		return nil, domain.Invalidf("at most %d allocation pools, got %d", MaxPools, len(pools))
	}
	spans := make([][2]int, len(pools))
	for i, p := range pools {
		span, err := checkPool(r, gw, p)
		if err != nil {
			return nil, err
		}
		spans[i] = span
	}
	order := make([]int, len(pools))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return spans[a][0] - spans[b][0] })
	out := make([]Pool, len(pools))
	for k, i := range order {
		if k > 0 && spans[i][0] <= spans[order[k-1]][1] {
			prev := pools[order[k-1]]
			return nil, domain.Invalidf("allocation pools %s-%s and %s-%s overlap", prev.Start, prev.End, pools[i].Start, pools[i].End)
		}
		out[k] = pools[i]
	}
	return out, nil
}

func checkPool(r addrRange, gw int, p Pool) ([2]int, error) {
	lo, err := r.usable("allocation pool start", p.Start)
	if err != nil {
		return [2]int{}, err
	}
	hi, err := r.usable("allocation pool end", p.End)
	if err != nil {
		return [2]int{}, err
	}
	if lo > hi {
		return [2]int{}, domain.Invalidf("allocation pool %s-%s ends before it starts", p.Start, p.End)
	}
	if gw >= lo && gw <= hi {
		return [2]int{}, domain.Invalidf("gateway %s is inside allocation pool %s-%s; the gateway is never handed out, so leave it out of the pools", r.addr(gw), p.Start, p.End)
	}
	return [2]int{lo, hi}, nil
}

func defaultPools(r addrRange, gw int) []Pool {
	first, last := 1, r.size-2
	var out []Pool
	add := func(lo, hi int) {
		if lo <= hi {
			out = append(out, Pool{Start: r.addr(lo), End: r.addr(hi)})
		}
	}
	if gw < 0 {
		add(first, last)
		return out
	}
	add(first, gw-1)
	add(gw+1, last)
	return out
}

func checkDNS(dns []string) error {
	if len(dns) > MaxDNS {
		return domain.Invalidf("at most %d DNS servers, got %d", MaxDNS, len(dns))
	}
	for i, d := range dns {
		if _, err := parseIPv4("DNS server", d); err != nil {
			return err
		}
		if slices.Contains(dns[:i], d) {
			return domain.Invalidf("DNS server %s is listed twice", d)
		}
	}
	return nil
}

func checkRoutes(r addrRange, routes []Route) error {
	if len(routes) > MaxRoutes {
		return domain.Invalidf("at most %d host routes, got %d", MaxRoutes, len(routes))
	}
	for i, rt := range routes {
		p, err := netip.ParsePrefix(rt.Destination)
		switch {
		case err != nil || !p.Addr().Is4():
			return domain.Invalidf("host route destination %q is not an IPv4 network such as 192.168.0.0/16", rt.Destination)
		case p.Masked() != p:
			return domain.Invalidf("host route destination %s has host bits set; did you mean %s?", rt.Destination, p.Masked())
		}
		if _, err := r.usable("host route nexthop", rt.Nexthop); err != nil {
			return err
		}
		for _, prev := range routes[:i] {
			if prev.Destination == rt.Destination {
				return domain.Invalidf("host route destination %s is listed twice", rt.Destination)
			}
		}
	}
	return nil
}
