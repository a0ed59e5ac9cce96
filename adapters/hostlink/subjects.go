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
//	                      observe, unknown, image, parked, progress, done;
//	                      heartbeat and goodbye
//	keel.agent.H.console  serve → agent requests; also .display and .work
//	keel.work.H           the host's work (stream KEEL_WORK, a work queue
//	                      keel serve reads and hands to the host)
//
// and for a simulated host, keel.sim.H.<verb>, keel.simagent.H.<verb> and
// keel.simwork.H (stream KEEL_SIMWORK).
//
// Agents get no JetStream access at all: a client can name any reply
// subject on a request, and JetStream answers there with the full rights
// of the account, so a host allowed to pull from its consumer could make
// JetStream publish into the event stream. keel serve's Forwarder reads
// the work streams and hands each piece to its host by request; the host
// says "in progress" and "done" through the Service, which acknowledges
// for it after checking that the piece is that host's.
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
	VerbProgress  = "progress"
	VerbDone      = "done"
	VerbHeartbeat = "heartbeat"
	VerbGoodbye   = "goodbye"
)

var requestVerbs = []string{VerbRegister, VerbReport, VerbServers, VerbObserve, VerbUnknown, VerbImage, VerbParked, VerbProgress, VerbDone}

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

// ForwarderConsumer is the durable consumer keel serve reads the work
// streams with.
const ForwarderConsumer = "forwarder"

// workRequestSubject is where host hostID is handed its work.
func workRequestSubject(hostID string, sim bool) string { return spaceOf(sim).agent + hostID + ".work" }

// inboxPrefix is the inbox of a host's connection (its replies come there;
// nobody else may read it).
func inboxPrefix(hostID string) string {
	if hostID == "" {
		return "_INBOX_FLEET"
	}
	return "_INBOX_" + hostID
}
