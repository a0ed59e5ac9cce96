package ovn

import (
	"fmt"
	"slices"
	"strings"

	"github.com/keel-cloud/keel/adapters/ovn/nbdb"
	"github.com/keel-cloud/keel/domain/secgroup"
)

// How security groups become ACLs, following Neutron's OVN driver
// (networking-ovn common/acl.py, port group mode):
//
//   - each group is a Port_Group keel_<id> holding its members' switch
//     ports; each rule is one ACL on it, action allow-related (so replies
//     pass), priority 1002;
//   - ingress is to-lport and matches outport == @keel_<id>; egress is
//     from-lport and matches inport == @keel_<id>;
//   - a remote CIDR matches ip4.src (ingress) or ip4.dst (egress); a remote
//     group matches the address set ovn-northd keeps for its port group,
//     $keel_<remote id>_ip4 (the IPv4 addresses of its members' ports), so
//     membership changes need no ACL change;
//   - tcp/udp ports match <proto>.dst (== for one port, >= and <= for a
//     range); icmp type and code match icmp4.type and icmp4.code; another
//     protocol number matches ip.proto;
//   - the default deny is the shared keel_drop group (DropPortGroup): drop
//     ip at priority 1001 both ways. Unlike Neutron's group, keel_drop also
//     allows a member's DHCP requests (from-lport, udp 68 to 67, allow,
//     1002): OVN answers them in a pipeline stage after the ACLs, so a
//     group without an egress rule would otherwise cut its ports off DHCP.

// ruleACL is the ACL of one rule of group g.
func ruleACL(g secgroup.State, r secgroup.Rule) nbdb.ACL {
	pg := PortGroupName(string(g.ID))
	return nbdb.ACL{
		Direction: aclDirection(r),
		Priority:  priorityAllow,
		Action:    nbdb.ACLActionAllowRelated,
		Match:     ruleMatch(pg, r),
		ExternalIDs: map[string]string{
			KeySecGroup: string(g.ID),
			KeyRule:     r.ID,
		},
	}
}

// groupACLs are the ACLs of a security group's port group.
func groupACLs(g secgroup.State) []nbdb.ACL {
	acls := make([]nbdb.ACL, 0, len(g.Rules))
	for _, r := range g.Rules {
		acls = append(acls, ruleACL(g, r))
	}
	return acls
}

func aclDirection(r secgroup.Rule) nbdb.ACLDirection {
	if r.Direction == secgroup.Ingress {
		return nbdb.ACLDirectionToLport
	}
	return nbdb.ACLDirectionFromLport
}

// ruleMatch is the ACL match of rule r on port group pg.
func ruleMatch(pg string, r secgroup.Rule) string {
	var m strings.Builder
	peer := "ip4.dst"
	if r.Direction == secgroup.Ingress {
		fmt.Fprintf(&m, "outport == @%s && ip4", pg)
		peer = "ip4.src"
	} else {
		fmt.Fprintf(&m, "inport == @%s && ip4", pg)
	}
	switch {
	case r.RemoteCIDR != "":
		fmt.Fprintf(&m, " && %s == %s", peer, r.RemoteCIDR)
	case r.RemoteGroup != "":
		fmt.Fprintf(&m, " && %s == $%s_ip4", peer, PortGroupName(r.RemoteGroup))
	}
	m.WriteString(protocolMatch(r))
	return m.String()
}

// protocolMatch narrows a match to a rule's protocol and ports.
func protocolMatch(r secgroup.Rule) string {
	switch r.Protocol {
	case secgroup.AnyProtocol, "":
		return ""
	case secgroup.TCP, secgroup.UDP:
		s := " && " + r.Protocol
		switch {
		case r.PortMin == 0 && r.PortMax == 0:
		case r.PortMin == r.PortMax:
			s += fmt.Sprintf(" && %s.dst == %d", r.Protocol, r.PortMin)
		default:
			s += fmt.Sprintf(" && %s.dst >= %d && %s.dst <= %d", r.Protocol, r.PortMin, r.Protocol, r.PortMax)
		}
		return s
	case secgroup.ICMP:
		s := " && icmp4"
		if r.ICMPType != nil {
			s += fmt.Sprintf(" && icmp4.type == %d", *r.ICMPType)
		}
		if r.ICMPCode != nil {
			s += fmt.Sprintf(" && icmp4.code == %d", *r.ICMPCode)
		}
		return s
	default:
		return " && ip.proto == " + r.Protocol
	}
}

// dropACLs are keel_drop's ACLs.
func dropACLs() []nbdb.ACL {
	ids := map[string]string{KeyOwner: "keel"}
	return []nbdb.ACL{
		{Direction: nbdb.ACLDirectionFromLport, Priority: priorityDrop, Action: nbdb.ACLActionDrop,
			Match: "inport == @" + DropPortGroup + " && ip", ExternalIDs: ids},
		{Direction: nbdb.ACLDirectionToLport, Priority: priorityDrop, Action: nbdb.ACLActionDrop,
			Match: "outport == @" + DropPortGroup + " && ip", ExternalIDs: ids},
		{Direction: nbdb.ACLDirectionFromLport, Priority: priorityAllow, Action: nbdb.ACLActionAllow,
			Match: "inport == @" + DropPortGroup + " && ip4 && udp && udp.src == 68 && udp.dst == 67", ExternalIDs: ids},
	}
}

// aclKey identifies an ACL by the columns Keel sets, for comparing
// desired ACLs with those in the NB.
func aclKey(a nbdb.ACL) string {
	ids := make([]string, 0, len(a.ExternalIDs))
	for k, v := range a.ExternalIDs {
		ids = append(ids, k+"="+v)
	}
	slices.Sort(ids)
	return fmt.Sprintf("%s|%d|%s|%s|%t|%s", a.Direction, a.Priority, a.Action, a.Match, a.Log, strings.Join(ids, ","))
}
