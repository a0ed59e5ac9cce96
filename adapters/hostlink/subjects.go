// Package hostlink is the link between keel serve and its host agents over
// NATS, built so that a compute node is not trusted with the cloud:
//
//   - an agent never touches the event log: keel serve turns server events
//     into work for each host (Dispatcher) and answers the agents' requests
//     (Service), checking each against what it recorded (is this server
//     placed on this host?) before it becomes a command;
//   - each real host connects with credentials of its own (Credentials,
//     issued by keel host credentials), and the embedded NATS gives them
//     permissions limited to that host's subjects (Access): its own work
//     queue, its own request subjects, its own inbox;
//   - simulated fleets share the fleet credentials and subjects of their
//     own (keel.sim.…), which keel serve refuses for any host holding
//     credentials of its own;
//   - the admin password a build needs is sealed by keel serve to the
//     host's own curve key, so that it is in clear only on that host.
//
// The subjects, for a host whose id is H (commands.HostID of its name):
//
//	keel.host.H.<verb>    agent → serve requests: register, report, servers,
//	                      observe, unknown, image, parked; heartbeat and goodbye
//	keel.agent.H.console  serve → agent requests
//	keel.work.H           the host's work (stream KEEL_WORK, a work queue
//	                      read through the durable consumer host-H)
//
// and for a simulated host, keel.sim.H.<verb>, keel.simagent.H.console and
// keel.simwork.H (stream KEEL_SIMWORK, read by each fleet's consumer).
package hostlink

// Streams of work.
const (
	WorkStream    = "KEEL_WORK"
	SimWorkStream = "KEEL_SIMWORK"
)

// Request verbs (agent → serve).
const (
	VerbRegister  = "register"
	VerbReport    = "report"
	VerbServers   = "servers"
	VerbObserve   = "observe"
	VerbUnknown   = "unknown"
	VerbImage     = "image"
	VerbHeartbeat = "heartbeat"
	VerbGoodbye   = "goodbye"
)

var requestVerbs = []string{VerbRegister, VerbReport, VerbServers, VerbObserve, VerbUnknown, VerbImage, VerbParked}

// space is one subject space: a real host's, or a simulated fleet's.
type space struct {
	host, agent, work, stream string
}

var (
	realSpace = space{host: "keel.host.", agent: "keel.agent.", work: "keel.work.", stream: WorkStream}
	simSpace  = space{host: "keel.sim.", agent: "keel.simagent.", work: "keel.simwork.", stream: SimWorkStream}
)

func spaceOf(sim bool) space {
	if sim {
		return simSpace
	}
	return realSpace
}

// HostSubject is where host hostID sends requests of verb.
func HostSubject(hostID, verb string, sim bool) string {
	return spaceOf(sim).host + hostID + "." + verb
}

// ConsoleSubject is where host hostID answers console-log requests.
func ConsoleSubject(hostID string, sim bool) string { return spaceOf(sim).agent + hostID + ".console" }

// WorkSubject is where the work of host hostID goes.
func WorkSubject(hostID string, sim bool) string { return spaceOf(sim).work + hostID }

// HostConsumer is the durable consumer a real host reads its work with.
func HostConsumer(hostID string) string { return "host-" + hostID }

// FleetConsumer is the durable consumer a simulated fleet reads with.
func FleetConsumer(name string) string { return "fleet-" + name }

// inboxPrefix is the inbox of a host's connection (its replies come there;
// nobody else may read it).
func inboxPrefix(hostID string) string {
	if hostID == "" {
		return "_INBOX_FLEET"
	}
	return "_INBOX_" + hostID
}
