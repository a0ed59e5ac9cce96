package secgroup

import (
	"net/netip"
	"strconv"

	"github.com/keel-cloud/keel/domain"
)

// Directions of a rule.
const (
	Ingress = "ingress"
	Egress  = "egress"
)

// IPv4 is the one ethertype for now.
const IPv4 = "IPv4"

// Protocols by name; any other is a number from 0 to 255.
const (
	AnyProtocol = "any"
	TCP         = "tcp"
	UDP         = "udp"
	ICMP        = "icmp"
)

// Rule allows traffic of one kind in one direction.
type Rule struct {
	ID        string `json:"id"`
	Direction string `json:"direction"`
	// EtherType is IPv4 (the default).
	EtherType string `json:"ethertype"`
	// Protocol is tcp, udp, icmp, any (the default), or a number 0-255.
	Protocol string `json:"protocol"`
	// PortMin and PortMax bound the destination ports of tcp and udp, both
	// included; both 0 means every port.
	PortMin int `json:"port_min,omitempty"`
	PortMax int `json:"port_max,omitempty"`
	// ICMPType and ICMPCode narrow an icmp rule; nil means any.
	ICMPType *int `json:"icmp_type,omitempty"`
	ICMPCode *int `json:"icmp_code,omitempty"`
	// RemoteCIDR or RemoteGroup (not both) narrow where traffic comes
	// from (ingress) or goes to (egress); neither means anywhere.
	RemoteCIDR  string `json:"remote_cidr,omitempty"`
	RemoteGroup string `json:"remote_group_id,omitempty"`
	Description string `json:"description,omitempty"`
}

// protocolNames maps protocol numbers to the names rules use, so that
// "6" and "tcp" are the same rule.
var protocolNames = map[string]string{"1": ICMP, "6": TCP, "17": UDP}

// normalise checks a rule and fills in its defaults.
func (r Rule) normalise() (Rule, error) {
	if r.ID == "" {
		return Rule{}, domain.Invalidf("a rule needs an id")
	}
	if r.Direction != Ingress && r.Direction != Egress {
		return Rule{}, domain.Invalidf("direction must be %s or %s, got %q", Ingress, Egress, r.Direction)
	}
	if r.EtherType == "" {
		r.EtherType = IPv4
	}
	if r.EtherType != IPv4 {
		return Rule{}, domain.Invalidf("ethertype must be %s (IPv6 is not supported yet), got %q", IPv4, r.EtherType)
	}
	var err error
	if r.Protocol, err = normaliseProtocol(r.Protocol); err != nil {
		return Rule{}, err
	}
	if err := r.checkPorts(); err != nil {
		return Rule{}, err
	}
	if err := r.checkICMP(); err != nil {
		return Rule{}, err
	}
	if err := r.checkRemote(); err != nil {
		return Rule{}, err
	}
	return r, domain.CheckTextUpTo("rule description", r.Description, MaxDescription)
}

func normaliseProtocol(p string) (string, error) {
	switch p {
	case "", AnyProtocol:
		return AnyProtocol, nil
	case TCP, UDP, ICMP:
		return p, nil
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 255 || strconv.Itoa(n) != p {
		return "", domain.Invalidf("protocol must be tcp, udp, icmp, any or a number from 0 to 255, got %q", p)
	}
	if name, ok := protocolNames[p]; ok {
		return name, nil
	}
	return p, nil
}

func (r Rule) checkPorts() error {
	if r.PortMin == 0 && r.PortMax == 0 {
		return nil
	}
	switch {
	case r.Protocol != TCP && r.Protocol != UDP:
		return domain.Invalidf("a port range applies to tcp and udp only, not to protocol %s", r.Protocol)
	case r.PortMin < 1 || r.PortMin > 65535 || r.PortMax < 1 || r.PortMax > 65535:
		return domain.Invalidf("ports must be between 1 and 65535, got %d-%d", r.PortMin, r.PortMax)
	case r.PortMin > r.PortMax:
		return domain.Invalidf("port range %d-%d ends before it starts", r.PortMin, r.PortMax)
	}
	return nil
}

func (r Rule) checkICMP() error {
	if r.ICMPType == nil && r.ICMPCode == nil {
		return nil
	}
	switch {
	case r.Protocol != ICMP:
		return domain.Invalidf("an ICMP type or code applies to protocol icmp only, not to %s", r.Protocol)
	case r.ICMPType == nil:
		return domain.Invalidf("an ICMP code needs an ICMP type")
	case *r.ICMPType < 0 || *r.ICMPType > 255:
		return domain.Invalidf("ICMP type must be between 0 and 255, got %d", *r.ICMPType)
	case r.ICMPCode != nil && (*r.ICMPCode < 0 || *r.ICMPCode > 255):
		return domain.Invalidf("ICMP code must be between 0 and 255, got %d", *r.ICMPCode)
	}
	return nil
}

func (r Rule) checkRemote() error {
	if r.RemoteCIDR != "" && r.RemoteGroup != "" {
		return domain.Invalidf("a rule names a remote CIDR or a remote group, not both")
	}
	if r.RemoteCIDR == "" {
		return nil
	}
	p, err := netip.ParsePrefix(r.RemoteCIDR)
	switch {
	case err != nil || !p.Addr().Is4():
		return domain.Invalidf("remote CIDR %q is not an IPv4 network such as 192.168.0.0/16", r.RemoteCIDR)
	case p.Masked() != p:
		return domain.Invalidf("remote CIDR %s has host bits set; did you mean %s?", r.RemoteCIDR, p.Masked())
	}
	return nil
}

// same reports whether two normalised rules allow the same traffic (their
// ids and descriptions aside).
func (r Rule) same(o Rule) bool {
	eq := func(a, b *int) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
	return r.Direction == o.Direction && r.EtherType == o.EtherType && r.Protocol == o.Protocol &&
		r.PortMin == o.PortMin && r.PortMax == o.PortMax && eq(r.ICMPType, o.ICMPType) && eq(r.ICMPCode, o.ICMPCode) &&
		r.RemoteCIDR == o.RemoteCIDR && r.RemoteGroup == o.RemoteGroup
}
