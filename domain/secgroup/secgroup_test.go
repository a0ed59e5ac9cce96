package secgroup_test

import (
	"testing"
	"time"

	"github.com/keel-cloud/keel/domain"
	dt "github.com/keel-cloud/keel/domain/decidertest"
	sg "github.com/keel-cloud/keel/domain/secgroup"
)

var (
	t0       = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	defaults = sg.DefaultRules("sg-1", "r-egress", "r-ingress")
	dflt     = []domain.Event{&sg.Created{ID: "sg-1", Project: "p-1", Name: sg.DefaultName, Description: "the project's default", Default: true, Rules: defaults, At: t0}}
	web      = []domain.Event{&sg.Created{ID: "sg-1", Project: "p-1", Name: "web", At: t0}}
	ssh      = sg.Rule{ID: "r-ssh", Direction: sg.Ingress, EtherType: sg.IPv4, Protocol: sg.TCP, PortMin: 22, PortMax: 22, RemoteCIDR: "192.168.0.0/16"}
	withSSH  = dt.Plus(web, &sg.RuleAdded{Rule: ssh, At: t0})
)

func ptr(n int) *int { return &n }

func add(f func(r *sg.Rule)) sg.Command {
	r := sg.Rule{ID: "r-1", Direction: sg.Ingress}
	f(&r)
	return sg.AddRule{Rule: r, At: t0}
}

func added(f func(r *sg.Rule)) dt.Outcome {
	r := sg.Rule{ID: "r-1", Direction: sg.Ingress, EtherType: sg.IPv4, Protocol: sg.AnyProtocol}
	f(&r)
	return dt.Then(&sg.RuleAdded{Rule: r, At: t0})
}

func TestCreate(t *testing.T) {
	dt.Run(t, sg.Decider, "sg-1", []dt.Case[sg.Command]{
		{Name: "the default group with Neutron's rules", When: sg.Create{ID: "sg-1", Project: "p-1", Description: "the project's default", Default: true, Rules: defaults, At: t0}, Then: dt.Then(dflt...)},
		{Name: "a group without rules", When: sg.Create{ID: "sg-1", Project: "p-1", Name: "web", At: t0}, Then: dt.Then(web...)},
		{Name: "twice", Given: web, When: sg.Create{ID: "sg-1", Project: "p-1", Name: "web", At: t0}, Then: dt.Refused(domain.Conflict, "security group sg-1 already exists")},
		{Name: "no project", When: sg.Create{ID: "sg-1", Name: "web", At: t0}, Then: dt.Refused(domain.Invalid, "belongs to a project")},
		{Name: "no name", When: sg.Create{ID: "sg-1", Project: "p-1", At: t0}, Then: dt.Refused(domain.Invalid, "name must not be empty")},
		{Name: "another group named default", When: sg.Create{ID: "sg-1", Project: "p-1", Name: "default", At: t0}, Then: dt.Refused(domain.Invalid, `the name "default" is kept for the project's default security group`)},
		{Name: "a default group named otherwise", When: sg.Create{ID: "sg-1", Project: "p-1", Name: "web", Default: true, At: t0}, Then: dt.Refused(domain.Invalid, `a project's default security group is named "default", not "web"`)},
		{Name: "the same rule twice", When: sg.Create{ID: "sg-1", Project: "p-1", Name: "web", Rules: []sg.Rule{ssh, {ID: "r-2", Direction: sg.Ingress, Protocol: "6", PortMin: 22, PortMax: 22, RemoteCIDR: "192.168.0.0/16"}}, At: t0},
			Then: dt.Refused(domain.Conflict, "security group web already has this rule: rule r-ssh")},
		{Name: "a bad first rule", When: sg.Create{ID: "sg-1", Project: "p-1", Name: "web", Rules: []sg.Rule{{ID: "r-1", Direction: "in"}}, At: t0}, Then: dt.Refused(domain.Invalid, `direction must be ingress or egress, got "in"`)},
	})
}

func TestRules(t *testing.T) {
	dt.Run(t, sg.Decider, "sg-1", []dt.Case[sg.Command]{
		{Name: "any protocol by default", Given: web, When: add(func(*sg.Rule) {}), Then: added(func(*sg.Rule) {})},
		{Name: "tcp port range from a CIDR", Given: web, When: add(func(r *sg.Rule) { r.Protocol, r.PortMin, r.PortMax, r.RemoteCIDR = "tcp", 8000, 8080, "10.0.0.0/8" }),
			Then: added(func(r *sg.Rule) { r.Protocol, r.PortMin, r.PortMax, r.RemoteCIDR = "tcp", 8000, 8080, "10.0.0.0/8" })},
		{Name: "protocol 17 is udp", Given: web, When: add(func(r *sg.Rule) { r.Protocol, r.PortMin, r.PortMax = "17", 53, 53 }),
			Then: added(func(r *sg.Rule) { r.Protocol, r.PortMin, r.PortMax = "udp", 53, 53 })},
		{Name: "protocol by number", Given: web, When: add(func(r *sg.Rule) { r.Protocol = "47" }), Then: added(func(r *sg.Rule) { r.Protocol = "47" })},
		{Name: "icmp echo from a group", Given: web, When: add(func(r *sg.Rule) { r.Protocol, r.ICMPType, r.ICMPCode, r.RemoteGroup = "icmp", ptr(8), ptr(0), "sg-2" }),
			Then: added(func(r *sg.Rule) { r.Protocol, r.ICMPType, r.ICMPCode, r.RemoteGroup = "icmp", ptr(8), ptr(0), "sg-2" })},
		{Name: "egress", Given: web, When: add(func(r *sg.Rule) { r.Direction = sg.Egress }), Then: added(func(r *sg.Rule) { r.Direction = sg.Egress })},
		{Name: "the same rule again", Given: withSSH, When: add(func(r *sg.Rule) { r.Protocol, r.PortMin, r.PortMax, r.RemoteCIDR = "tcp", 22, 22, "192.168.0.0/16" }),
			Then: dt.Refused(domain.Conflict, "security group web already has this rule: rule r-ssh")},
		{Name: "the same id again", Given: withSSH, When: add(func(r *sg.Rule) { r.ID = "r-ssh" }), Then: dt.Refused(domain.Conflict, "already has a rule r-ssh")},
		{Name: "no id", Given: web, When: add(func(r *sg.Rule) { r.ID = "" }), Then: dt.Refused(domain.Invalid, "a rule needs an id")},
		{Name: "IPv6", Given: web, When: add(func(r *sg.Rule) { r.EtherType = "IPv6" }), Then: dt.Refused(domain.Invalid, `ethertype must be IPv4 (IPv6 is not supported yet), got "IPv6"`)},
		{Name: "unknown protocol", Given: web, When: add(func(r *sg.Rule) { r.Protocol = "sctp" }), Then: dt.Refused(domain.Invalid, `protocol must be tcp, udp, icmp, any or a number from 0 to 255, got "sctp"`)},
		{Name: "protocol 256", Given: web, When: add(func(r *sg.Rule) { r.Protocol = "256" }), Then: dt.Refused(domain.Invalid, `got "256"`)},
		{Name: "ports for icmp", Given: web, When: add(func(r *sg.Rule) { r.Protocol, r.PortMin, r.PortMax = "icmp", 1, 2 }), Then: dt.Refused(domain.Invalid, "a port range applies to tcp and udp only, not to protocol icmp")},
		{Name: "port 0", Given: web, When: add(func(r *sg.Rule) { r.Protocol, r.PortMax = "tcp", 80 }), Then: dt.Refused(domain.Invalid, "ports must be between 1 and 65535, got 0-80")},
		{Name: "port 65536", Given: web, When: add(func(r *sg.Rule) { r.Protocol, r.PortMin, r.PortMax = "tcp", 1, 65536 }), Then: dt.Refused(domain.Invalid, "got 1-65536")},
		{Name: "range backwards", Given: web, When: add(func(r *sg.Rule) { r.Protocol, r.PortMin, r.PortMax = "udp", 90, 80 }), Then: dt.Refused(domain.Invalid, "port range 90-80 ends before it starts")},
		{Name: "icmp type for tcp", Given: web, When: add(func(r *sg.Rule) { r.Protocol, r.ICMPType = "tcp", ptr(8) }), Then: dt.Refused(domain.Invalid, "applies to protocol icmp only, not to tcp")},
		{Name: "icmp code without a type", Given: web, When: add(func(r *sg.Rule) { r.Protocol, r.ICMPCode = "icmp", ptr(0) }), Then: dt.Refused(domain.Invalid, "an ICMP code needs an ICMP type")},
		{Name: "icmp type 256", Given: web, When: add(func(r *sg.Rule) { r.Protocol, r.ICMPType = "icmp", ptr(256) }), Then: dt.Refused(domain.Invalid, "ICMP type must be between 0 and 255, got 256")},
		{Name: "remote CIDR and group", Given: web, When: add(func(r *sg.Rule) { r.RemoteCIDR, r.RemoteGroup = "10.0.0.0/8", "sg-2" }), Then: dt.Refused(domain.Invalid, "a remote CIDR or a remote group, not both")},
		{Name: "remote CIDR with host bits", Given: web, When: add(func(r *sg.Rule) { r.RemoteCIDR = "10.1.2.3/8" }), Then: dt.Refused(domain.Invalid, "did you mean 10.0.0.0/8?")},
		{Name: "remote CIDR not a network", Given: web, When: add(func(r *sg.Rule) { r.RemoteCIDR = "anywhere" }), Then: dt.Refused(domain.Invalid, `remote CIDR "anywhere" is not an IPv4 network`)},
		{Name: "remove a rule", Given: withSSH, When: sg.RemoveRule{RuleID: "r-ssh", At: t0}, Then: dt.Then(&sg.RuleRemoved{RuleID: "r-ssh", At: t0})},
		{Name: "remove a rule not there", Given: withSSH, When: sg.RemoveRule{RuleID: "r-9", At: t0}, Then: dt.Refused(domain.NotFound, "security group web has no rule r-9")},
		{Name: "add it back once removed", Given: dt.Plus(withSSH, &sg.RuleRemoved{RuleID: "r-ssh", At: t0}), When: sg.AddRule{Rule: ssh, At: t0}, Then: dt.Then(&sg.RuleAdded{Rule: ssh, At: t0})},
	})
}

func TestDelete(t *testing.T) {
	gone := dt.Plus(web, &sg.Deleted{At: t0})
	dt.Run(t, sg.Decider, "sg-1", []dt.Case[sg.Command]{
		{Name: "delete", Given: web, When: sg.Delete{At: t0}, Then: dt.Then(&sg.Deleted{At: t0})},
		{Name: "the default group stays", Given: dflt, When: sg.Delete{At: t0}, Then: dt.Refused(domain.Conflict, "is the project's default group; it is deleted with the project")},
		{Name: "the default group goes with its project", Given: dflt, When: sg.Delete{ProjectDeleted: true, At: t0}, Then: dt.Then(&sg.Deleted{At: t0})},
		{Name: "delete twice", Given: gone, When: sg.Delete{At: t0}, Then: dt.Refused(domain.NotFound, "security group sg-1 not found")},
		{Name: "add a rule to a deleted group", Given: gone, When: sg.AddRule{Rule: ssh, At: t0}, Then: dt.Refused(domain.NotFound, "not found")},
	})
}

func TestRuleLimit(t *testing.T) {
	given := web
	for i := range sg.MaxRules {
		given = dt.Plus(given, &sg.RuleAdded{Rule: sg.Rule{ID: string(rune(0x4e00 + i)), Direction: sg.Ingress, EtherType: sg.IPv4, Protocol: sg.TCP, PortMin: i + 1, PortMax: i + 1}, At: t0})
	}
	dt.Decide(t, sg.Decider, "sg-1", given, add(func(r *sg.Rule) { r.ID = "one-more" }), dt.Refused(domain.Conflict, "already has 500 rules"))
}

// An id whose create never committed is closed by Abandon (its quota
// reservation is then given back): a later create is refused.
func TestAbandon(t *testing.T) {
	abandoned := []domain.Event{&sg.Abandoned{ID: "sg-1", Reason: "crash", At: t0}}
	dt.Run(t, sg.Decider, "sg-1", []dt.Case[sg.Command]{
		{Name: "a fresh id", When: sg.Abandon{Reason: "crash", At: t0}, Then: dt.Then(abandoned...)},
		{Name: "twice", Given: abandoned, When: sg.Abandon{Reason: "crash", At: t0}, Then: dt.Then()},
		{Name: "create after", Given: abandoned, When: sg.Create{ID: "sg-1", Project: "p-1", Name: "web", At: t0}, Then: dt.Refused(domain.Conflict, "new Idempotency-Key")},
		{Name: "an existing group", Given: web, When: sg.Abandon{At: t0}, Then: dt.Refused(domain.Conflict, "security group sg-1 exists")},
	})
}
