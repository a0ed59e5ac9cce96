package server_test

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/decidertest"
	"github.com/keel-cloud/keel/domain/server"
)

// --- fixtures -------------------------------------------------------------

const (
	sid      = server.ID("srv-1")
	h1       = "host-1"
	h2       = "host-2"
	opCreate = "op-create"
	opStart  = "op-start"
	opStop   = "op-stop"
	opReboot = "op-reboot"
	opDelete = "op-delete"
	opNew    = "op-new" // the operation of the command under test
)

var (
	t0  = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	t1  = t0.Add(time.Minute) // the time of the command under test
	flv = server.Flavor{ID: "fl-1", Name: "m1.small", VCPUs: 1, RAMMiB: 512, DiskGiB: 10}
)

var plus = decidertest.Plus

// Histories: the past events that put a server into each state. The name of
// each history is the state a user would see.
var (
	none      []domain.Event
	building  = plus(none, &server.Created{ID: sid, Name: "web-1", Flavor: flv, ImageID: "img-1", Operation: opCreate, CreatedAt: t0})
	spawning  = plus(building, &server.Scheduled{Host: h1, Operation: opCreate, At: t0})
	active    = plus(spawning, &server.Spawned{Host: h1, At: t0})
	stopping  = plus(active, &server.StopRequested{Host: h1, Operation: opStop, At: t0})
	stopped   = plus(stopping, &server.Stopped{Host: h1, At: t0})
	starting  = plus(stopped, &server.StartRequested{Host: h1, Operation: opStart, At: t0})
	rebooting = plus(active, &server.RebootRequested{Host: h1, Operation: opReboot, At: t0})
	errored   = plus(spawning, &server.Failed{Host: h1, Reason: "image is corrupt", Operation: opCreate, At: t0})
	deleting  = plus(active, &server.DeleteRequested{Host: h1, Operation: opDelete, At: t0})
	deleted   = plus(deleting, &server.Deleted{Host: h1, At: t0})
)

// histories names every history, for matrix tests.
var histories = []struct {
	name   string
	events []domain.Event
}{
	{"building", building}, {"spawning", spawning}, {"active", active},
	{"stopping", stopping}, {"stopped", stopped}, {"starting", starting},
	{"rebooting", rebooting}, {"error", errored}, {"deleting", deleting}, {"deleted", deleted},
}

func fold(events []domain.Event) server.State {
	return decidertest.Fold(server.Decider, string(sid), events)
}

// --- given/when/then ------------------------------------------------------

type tc struct {
	name  string
	given []domain.Event
	when  server.Command
	want  decidertest.Outcome
}

var (
	then    = decidertest.Then
	refused = decidertest.Refused
	show    = decidertest.Show
)

func run(t *testing.T, cases []tc) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { decidertest.Decide(t, server.Decider, string(sid), c.given, c.when, c.want) })
	}
}

// --- create ---------------------------------------------------------------

func create(name string) server.Create {
	return server.Create{ID: sid, Name: name, Flavor: flv, ImageID: "img-1", Operation: opNew, At: t1}
}

func hinted(h server.Hints) server.Create {
	c := create("web-1")
	c.Hints = h
	return c
}

func TestCreate(t *testing.T) {
	noFlavor, noImage := create("web-1"), create("web-1")
	noFlavor.Flavor = server.Flavor{}
	noImage.ImageID = ""
	withData, tooMuchData := create("web-1"), create("web-1")
	withData.UserData = []byte(strings.Repeat("u", server.MaxUserData))
	tooMuchData.UserData = []byte(strings.Repeat("u", server.MaxUserData+1))
	withKey, keyNoName, keyNoKey, hugeSeal := create("web-1"), create("web-1"), create("web-1"), create("web-1")
	withKey.KeyName, withKey.PublicKey, withKey.AdminPasswordSealed = "alice", "ssh-ed25519 AAAA alice", []byte("sealed")
	keyNoName.PublicKey = "ssh-ed25519 AAAA alice"
	keyNoKey.KeyName = "alice"
	hugeSeal.AdminPasswordSealed = make([]byte, server.MaxSealedPassword+1)
	run(t, []tc{
		{"keypair and sealed password are copied into the event", none, withKey,
			then(&server.Created{ID: sid, Name: "web-1", Flavor: flv, ImageID: "img-1", Operation: opNew,
				KeyName: "alice", PublicKey: "ssh-ed25519 AAAA alice", AdminPasswordSealed: []byte("sealed"), CreatedAt: t1})},
		{"public key without its keypair's name", none, keyNoName, refused(domain.Invalid, "both its name and its public key")},
		{"keypair name without its key", none, keyNoKey, refused(domain.Invalid, "both its name and its public key")},
		{"oversized sealed password", none, hugeSeal, refused(domain.Invalid, "sealed admin password is 257 bytes")},
		{"user data", none, withData,
			then(&server.Created{ID: sid, Name: "web-1", Flavor: flv, ImageID: "img-1", Operation: opNew, UserData: withData.UserData, CreatedAt: t1})},
		{"user data too long", none, tooMuchData, refused(domain.Invalid, "user_data is 65536 bytes; at most 65535")},
		{"new server", none, create("web-1"),
			then(&server.Created{ID: sid, Name: "web-1", Flavor: flv, ImageID: "img-1", Operation: opNew, CreatedAt: t1})},
		{"255-byte name", none, create(strings.Repeat("n", 255)),
			then(&server.Created{ID: sid, Name: strings.Repeat("n", 255), Flavor: flv, ImageID: "img-1", Operation: opNew, CreatedAt: t1})},
		{"empty name", none, create(""), refused(domain.Invalid, "name must not be empty")},
		{"256-byte name", none, create(strings.Repeat("n", 256)), refused(domain.Invalid, "256 bytes long; the limit is 255")},
		{"control character", none, create("web\x07"), refused(domain.Invalid, "control characters")},
		{"newline", none, create("web\n1"), refused(domain.Invalid, "control characters")},
		{"leading space", none, create(" web"), refused(domain.Invalid, "white space")},
		{"trailing space", none, create("web "), refused(domain.Invalid, "white space")},
		{"invalid utf-8", none, create("web\xc3"), refused(domain.Invalid, "UTF-8")},
		{"replacement character", none, create("web\ufffd"), refused(domain.Invalid, "U+FFFD")},
		{"uuid name", none, create("3f2504e0-4f89-11d3-9a0c-0305e82c3301"), refused(domain.Invalid, "must not be a UUID")},
		{"override in name", none, create("web\u202e1"), refused(domain.Invalid, "bidirectional control characters (found U+202E)")},
		{"escape in zone hint", none, hinted(server.Hints{AvailabilityZone: "az\x1b[2J"}), refused(domain.Invalid, "availability zone must not contain control characters")},
		{"override in target host hint", none, hinted(server.Hints{TargetHost: "\u202enode"}), refused(domain.Invalid, "target host must not contain bidirectional")},
		{"escape in server group hint", none, hinted(server.Hints{ServerGroup: "g\x1b"}), refused(domain.Invalid, "server group must not contain control characters")},
		{"missing flavor", none, noFlavor, refused(domain.Invalid, "needs a flavor and an image")},
		{"missing image", none, noImage, refused(domain.Invalid, "needs a flavor and an image")},
		{"already exists", active, create("web-1"), refused(domain.Conflict, "server srv-1 already exists")},
		// The id of a deleted server is never reused: Create is refused
		// (as a conflict, not as not-found) and changes nothing.
		{"deleted id", deleted, create("web-1"), refused(domain.Conflict, "already exists")},
	})
}

// --- schedule and build ---------------------------------------------------

func TestSchedule(t *testing.T) {
	sch := server.Schedule{Host: h1, Operation: opCreate, At: t1}
	run(t, []tc{
		{"building", building, sch, then(&server.Scheduled{Host: h1, Operation: opCreate, At: t1})},
		{"empty host", building, server.Schedule{Operation: opCreate, At: t1}, refused(domain.Invalid, "host must not be empty")},
		{"spawning", spawning, sch, refused(domain.Conflict, "is spawning, not waiting for a host")},
		{"active", active, sch, refused(domain.Conflict, "is ACTIVE, not waiting for a host")},
		{"stopped", stopped, sch, refused(domain.Conflict, "is STOPPED")},
		{"error", errored, sch, refused(domain.Conflict, "is ERROR")},
		{"deleting", deleting, sch, refused(domain.Conflict, "is deleting")},
		{"deleted", deleted, sch, refused(domain.NotFound, "server srv-1 not found")},
		{"never created", none, sch, refused(domain.NotFound, "not found")},
	})
}

func TestFail(t *testing.T) {
	fail := server.Fail{Reason: "no host has room", Operation: opCreate, At: t1}
	run(t, []tc{
		{"while scheduling", building, fail,
			then(&server.Failed{Reason: "no host has room", Operation: opCreate, At: t1})},
		{"while spawning names the host to clean up", spawning, fail,
			then(&server.Failed{Host: h1, Reason: "no host has room", Operation: opCreate, At: t1})},
		{"active", active, fail, refused(domain.Conflict, "is ACTIVE, not building")},
		{"stopping", stopping, fail, refused(domain.Conflict, "is powering_off, not building")},
		{"stopped", stopped, fail, refused(domain.Conflict, "not building")},
		{"starting", starting, fail, refused(domain.Conflict, "not building")},
		{"rebooting", rebooting, fail, refused(domain.Conflict, "not building")},
		{"error", errored, fail, refused(domain.Conflict, "is ERROR, not building")},
		{"deleting", deleting, fail, refused(domain.Conflict, "not building")},
		{"deleted", deleted, fail, refused(domain.NotFound, "not found")},
	})
}

// --- user actions ---------------------------------------------------------

func TestStart(t *testing.T) {
	start := server.Start{Operation: opNew, At: t1}
	run(t, []tc{
		{"stopped", stopped, start, then(&server.StartRequested{Host: h1, Operation: opNew, At: t1})},
		{"active", active, start, refused(domain.Conflict, "cannot start server srv-1: it is ACTIVE; only a STOPPED server can be started")},
		{"error", errored, start, refused(domain.Conflict, "it is ERROR; only a STOPPED server can be started")},
		{"building", building, start, refused(domain.Conflict, "it is scheduling (operation op-create); wait for that to finish")},
		{"spawning", spawning, start, refused(domain.Conflict, "it is spawning (operation op-create)")},
		{"starting", starting, start, refused(domain.Conflict, "it is powering_on (operation op-start); wait")},
		{"stopping", stopping, start, refused(domain.Conflict, "it is powering_off (operation op-stop); wait")},
		{"rebooting", rebooting, start, refused(domain.Conflict, "it is rebooting (operation op-reboot); wait")},
		{"deleting", deleting, start, refused(domain.Conflict, "it is deleting (operation op-delete); wait")},
		{"deleted", deleted, start, refused(domain.NotFound, "server srv-1 not found")},
		{"never created", none, start, refused(domain.NotFound, "not found")},
	})
}

func TestStop(t *testing.T) {
	stop := server.Stop{Operation: opNew, At: t1}
	run(t, []tc{
		{"active", active, stop, then(&server.StopRequested{Host: h1, Operation: opNew, At: t1})},
		{"stopped", stopped, stop, refused(domain.Conflict, "cannot stop server srv-1: it is STOPPED; only an ACTIVE server can be stopped")},
		{"error", errored, stop, refused(domain.Conflict, "it is ERROR; only an ACTIVE server can be stopped")},
		{"building", building, stop, refused(domain.Conflict, "it is scheduling (operation op-create); wait")},
		{"spawning", spawning, stop, refused(domain.Conflict, "it is spawning")},
		{"starting", starting, stop, refused(domain.Conflict, "it is powering_on (operation op-start)")},
		{"stopping", stopping, stop, refused(domain.Conflict, "it is powering_off (operation op-stop)")},
		{"rebooting", rebooting, stop, refused(domain.Conflict, "it is rebooting (operation op-reboot)")},
		{"deleting", deleting, stop, refused(domain.Conflict, "it is deleting (operation op-delete)")},
		{"deleted", deleted, stop, refused(domain.NotFound, "not found")},
	})
}

func TestReboot(t *testing.T) {
	reboot := server.Reboot{Operation: opNew, At: t1}
	run(t, []tc{
		{"active", active, reboot, then(&server.RebootRequested{Host: h1, Operation: opNew, At: t1})},
		{"stopped", stopped, reboot, refused(domain.Conflict, "cannot reboot server srv-1: it is STOPPED; only an ACTIVE server can be rebooted")},
		{"error", errored, reboot, refused(domain.Conflict, "it is ERROR; only an ACTIVE server can be rebooted")},
		{"building", building, reboot, refused(domain.Conflict, "it is scheduling")},
		{"spawning", spawning, reboot, refused(domain.Conflict, "it is spawning")},
		{"starting", starting, reboot, refused(domain.Conflict, "it is powering_on")},
		{"stopping", stopping, reboot, refused(domain.Conflict, "it is powering_off")},
		{"rebooting", rebooting, reboot, refused(domain.Conflict, "cannot reboot server srv-1: it is rebooting (operation op-reboot); wait for that to finish")},
		{"deleting", deleting, reboot, refused(domain.Conflict, "it is deleting")},
		{"deleted", deleted, reboot, refused(domain.NotFound, "not found")},
	})
}

// --- delete ---------------------------------------------------------------

func TestDelete(t *testing.T) {
	del := server.Delete{Operation: opNew, At: t1}
	requested := func(host, superseded string) *server.DeleteRequested {
		return &server.DeleteRequested{Host: host, Superseded: superseded, Operation: opNew, At: t1}
	}
	gone := &server.Deleted{At: t1}
	run(t, []tc{
		// Without a host there is nothing to destroy: deleted in the same decision.
		{"building (no host yet)", building, del, then(requested("", opCreate), gone)},
		{"error (no host)", errored, del, then(requested("", ""), gone)},
		// With a host the host must confirm; an operation in progress is superseded.
		{"spawning", spawning, del, then(requested(h1, opCreate))},
		{"active", active, del, then(requested(h1, ""))},
		{"stopped", stopped, del, then(requested(h1, ""))},
		{"starting", starting, del, then(requested(h1, opStart))},
		{"stopping", stopping, del, then(requested(h1, opStop))},
		{"rebooting", rebooting, del, then(requested(h1, opReboot))},
		{"deleting", deleting, del, then()},
		{"deleted", deleted, del, refused(domain.NotFound, "server srv-1 not found")},
		{"never created", none, del, refused(domain.NotFound, "not found")},
	})
}

func TestForceDelete(t *testing.T) {
	force := server.ForceDelete{Reason: "host did not confirm", At: t1}
	run(t, []tc{
		{"deleting", deleting, force, then(&server.Deleted{Host: h1, Forced: true, Reason: "host did not confirm", At: t1})},
		{"active", active, force, refused(domain.Conflict, "server srv-1 is ACTIVE, not being deleted")},
		{"building", building, force, refused(domain.Conflict, "is BUILDING, not being deleted")},
		{"stopped", stopped, force, refused(domain.Conflict, "is STOPPED, not being deleted")},
		{"stopping", stopping, force, refused(domain.Conflict, "not being deleted")},
		{"rebooting", rebooting, force, refused(domain.Conflict, "is REBOOTING, not being deleted")},
		{"error", errored, force, refused(domain.Conflict, "is ERROR, not being deleted")},
		{"deleted", deleted, force, refused(domain.NotFound, "not found")},
	})
}

func TestAbortTask(t *testing.T) {
	abort := server.AbortTask{Reason: "timed out", At: t1}
	aborted := func(task server.Task) decidertest.Outcome {
		return then(&server.ActionFailed{Task: task, Reason: "timed out", At: t1})
	}
	noAction := refused(domain.Conflict, "server srv-1 has no start, stop, reboot or interface change in progress")
	run(t, []tc{
		{"starting", starting, abort, aborted(server.PoweringOn)},
		{"stopping", stopping, abort, aborted(server.PoweringOff)},
		{"rebooting", rebooting, abort, aborted(server.RebootTask)},
		{"building", building, abort, noAction},
		{"spawning", spawning, abort, noAction},
		{"active", active, abort, noAction},
		{"stopped", stopped, abort, noAction},
		{"error", errored, abort, noAction},
		{"deleting", deleting, abort, noAction},
		{"deleted", deleted, abort, refused(domain.NotFound, "not found")},
	})
}

// --- host reports ---------------------------------------------------------

func report(host string, kind server.ReportKind) server.Report {
	return server.Report{Host: host, Kind: kind, Reason: "disk full", At: t1}
}

func TestReportsAnswerTheTaskInProgress(t *testing.T) {
	run(t, []tc{
		{"spawned", spawning, report(h1, server.ReportSpawned), then(&server.Spawned{Host: h1, At: t1})},
		{"spawn failed: try another host", spawning, report(h1, server.ReportSpawnFailed),
			then(&server.SpawnFailed{Host: h1, Reason: "disk full", Attempt: 1, At: t1})},
		{"spawn failed on the last attempt", plus(spawning, &server.SpawnFailed{Host: "h0", Attempt: 1}, &server.Scheduled{Host: "h9"},
			&server.SpawnFailed{Host: "h9", Attempt: 2}, &server.Scheduled{Host: h1}), report(h1, server.ReportSpawnFailed),
			then(&server.Failed{Host: h1, Reason: "build failed on 3 hosts; last on " + h1 + ": disk full", Operation: opCreate, At: t1})},
		{"started", starting, report(h1, server.ReportStarted), then(&server.Started{Host: h1, At: t1})},
		{"stopped", stopping, report(h1, server.ReportStopped), then(&server.Stopped{Host: h1, At: t1})},
		{"rebooted", rebooting, report(h1, server.ReportRebooted), then(&server.Rebooted{Host: h1, At: t1})},
		{"start failed", starting, report(h1, server.ReportActionFailed),
			then(&server.ActionFailed{Task: server.PoweringOn, Reason: "disk full", At: t1})},
		{"stop failed", stopping, report(h1, server.ReportActionFailed),
			then(&server.ActionFailed{Task: server.PoweringOff, Reason: "disk full", At: t1})},
		{"reboot failed", rebooting, report(h1, server.ReportActionFailed),
			then(&server.ActionFailed{Task: server.RebootTask, Reason: "disk full", At: t1})},
		{"destroyed", deleting, report(h1, server.ReportDestroyed), then(&server.Deleted{Host: h1, At: t1})},
		// A delete supersedes a stop: the stop's late answer is stale.
		{"stale stop after delete", plus(stopping, &server.DeleteRequested{Host: h1, Superseded: opStop, Operation: opDelete, At: t0}),
			report(h1, server.ReportStopped), refused(domain.Conflict, `report "stopped" does not answer server srv-1, which is deleting`)},
		{"stale spawned after failure", errored, report(h1, server.ReportSpawned),
			refused(domain.Conflict, `host "host-1" reports on server srv-1, which is on host ""`)},
		{"on a deleted server", deleted, report(h1, server.ReportDestroyed),
			refused(domain.Conflict, `host "host-1" reports on server srv-1, which is on host ""`)},
		{"on a server that never existed", none, report(h1, server.ReportSpawned), refused(domain.NotFound, "not found")},
	})
}

// Every report kind from the server's own host, in every state: accepted
// only when it answers the task in progress, otherwise a stale Conflict.
func TestReportMatrix(t *testing.T) {
	answers := map[string][]server.ReportKind{
		"spawning":  {server.ReportSpawned, server.ReportSpawnFailed},
		"starting":  {server.ReportStarted, server.ReportActionFailed},
		"stopping":  {server.ReportStopped, server.ReportActionFailed},
		"rebooting": {server.ReportRebooted, server.ReportActionFailed},
		"deleting":  {server.ReportDestroyed},
	}
	kinds := []server.ReportKind{server.ReportSpawned, server.ReportSpawnFailed, server.ReportStarted,
		server.ReportStopped, server.ReportRebooted, server.ReportActionFailed, server.ReportDestroyed}
	for _, h := range histories {
		s := fold(h.events)
		for _, k := range kinds {
			t.Run(h.name+"/"+string(k), func(t *testing.T) {
				evs, err := server.Decide(s, report(s.Host, k))
				if s.Host == "" { // nothing runs on a host: every report is stale
					refused(domain.Conflict, "reports on server srv-1, which is on host \"\"").Check(t, evs, err)
					return
				}
				if slices.Contains(answers[h.name], k) {
					if err != nil || len(evs) != 1 {
						t.Fatalf("got %s, %v; want one event", show(evs), err)
					}
					return
				}
				refused(domain.Conflict, fmt.Sprintf("report %q does not answer server srv-1, which is", k)).Check(t, evs, err)
			})
		}
	}
}

func TestReportFromAnotherHostIsStale(t *testing.T) {
	for _, h := range histories {
		s := fold(h.events)
		if !s.Exists || s.Host == "" {
			continue
		}
		for _, host := range []string{h2, ""} {
			t.Run(h.name+"/"+host, func(t *testing.T) {
				evs, err := server.Decide(s, report(host, server.ReportDestroyed))
				refused(domain.Conflict, fmt.Sprintf("host %q reports on server srv-1, which is on host %q", host, h1)).Check(t, evs, err)
			})
		}
	}
}

// An unknown report kind is a malformed command (Invalid), not a stale
// report: decideReport even ends with an Invalid "unknown report kind",
// which the Conflict check before it makes unreachable.
func TestUnknownReportKindIsInvalid(t *testing.T) {
	evs, err := server.Decide(fold(active), report(h1, "exploded"))
	refused(domain.Invalid, `unknown report kind "exploded"`).Check(t, evs, err)
}

// A host's account of a failure is kept up to MaxReportDetail bytes (a
// libvirt message with its paths is often longer than a reason may be) and
// must be one line of printable text.
func TestReportDetail(t *testing.T) {
	failed := func(detail string) server.Report {
		r := report(h1, server.ReportSpawnFailed)
		r.Detail = detail
		return r
	}
	long := strings.Repeat("x", server.MaxReportDetail)
	run(t, []tc{
		{"kept with the failure", spawning, failed("qemu-img: /var/lib/keel/srv-1/root.qcow2: No space left on device"),
			then(&server.SpawnFailed{Host: h1, Reason: "disk full", Attempt: 1, Detail: "qemu-img: /var/lib/keel/srv-1/root.qcow2: No space left on device", At: t1})},
		{"4 KiB is kept whole", spawning, failed(long),
			then(&server.SpawnFailed{Host: h1, Reason: "disk full", Attempt: 1, Detail: long, At: t1})},
		{"longer is refused", spawning, failed(long + "y"),
			refused(domain.Invalid, "report detail is 4097 bytes long; the limit is 4096")},
		{"a second line is refused", spawning, failed("error: failed\nat line 2"),
			refused(domain.Invalid, "report detail must not contain control characters")},
	})
}

// --- evolve: what users see -----------------------------------------------

func TestStatusAfterEachEvent(t *testing.T) {
	type view struct {
		Status server.Status
		Task   server.Task
		Power  server.Power
		Host   string
		Reason string
	}
	steps := []struct {
		ev   domain.Event
		want view
	}{
		{building[0], view{server.StatusBuilding, server.Scheduling, server.NoState, "", ""}},
		{&server.Scheduled{Host: h1}, view{server.StatusBuilding, server.Spawning, server.NoState, h1, ""}},
		{&server.Spawned{Host: h1}, view{server.StatusActive, server.NoTask, server.Running, h1, ""}},
		{&server.StopRequested{Host: h1, Operation: opStop}, view{server.StatusActive, server.PoweringOff, server.Running, h1, ""}},
		{&server.ActionFailed{Task: server.PoweringOff, Reason: "stuck"}, view{server.StatusActive, server.NoTask, server.Running, h1, "stuck"}},
		{&server.StopRequested{Host: h1, Operation: opStop}, view{server.StatusActive, server.PoweringOff, server.Running, h1, "stuck"}},
		{&server.Stopped{Host: h1}, view{server.StatusStopped, server.NoTask, server.Shutoff, h1, ""}},
		{&server.StartRequested{Host: h1, Operation: opStart}, view{server.StatusStopped, server.PoweringOn, server.Shutoff, h1, ""}},
		{&server.ActionFailed{Task: server.PoweringOn, Reason: "no power"}, view{server.StatusStopped, server.NoTask, server.Shutoff, h1, "no power"}},
		{&server.StartRequested{Host: h1, Operation: opStart}, view{server.StatusStopped, server.PoweringOn, server.Shutoff, h1, "no power"}},
		{&server.Started{Host: h1}, view{server.StatusActive, server.NoTask, server.Running, h1, ""}},
		{&server.RebootRequested{Host: h1, Operation: opReboot}, view{server.StatusRebooting, server.RebootTask, server.Running, h1, ""}},
		{&server.ActionFailed{Task: server.RebootTask, Reason: "hung"}, view{server.StatusActive, server.NoTask, server.Running, h1, "hung"}},
		{&server.RebootRequested{Host: h1, Operation: opReboot}, view{server.StatusRebooting, server.RebootTask, server.Running, h1, "hung"}},
		{&server.Rebooted{Host: h1}, view{server.StatusActive, server.NoTask, server.Running, h1, ""}},
		{&server.DeleteRequested{Host: h1, Operation: opDelete}, view{server.StatusDeleting, server.DeleteTask, server.Running, h1, ""}},
		{&server.Deleted{Host: h1}, view{server.StatusDeleted, server.NoTask, server.NoState, "", ""}},
	}
	var s server.State
	for i, st := range steps {
		s = server.Evolve(s, st.ev)
		got := view{s.Status, s.Task, s.Power, s.Host, s.Reason}
		if got != st.want {
			t.Fatalf("after event %d (%s): %+v, want %+v", i, st.ev.EventType(), got, st.want)
		}
	}
}

func TestErrorKeepsTheReasonAndDropsTheHost(t *testing.T) {
	s := fold(errored)
	if s.Status != server.StatusError || s.Reason != "image is corrupt" || s.Host != "" || s.Task != server.NoTask || s.Power != server.NoState {
		t.Fatalf("after a failed build: %+v", s)
	}
	// A build that failed while scheduling ends the same way.
	s = fold(plus(building, &server.Failed{Reason: "no host has room", Operation: opCreate}))
	if s.Status != server.StatusError || s.Reason != "no host has room" || s.Host != "" {
		t.Fatalf("after a failed schedule: %+v", s)
	}
}

func TestCreatedRecordsTheRequest(t *testing.T) {
	s := fold(building)
	want := server.State{ID: sid, Exists: true, Name: "web-1", Flavor: flv, ImageID: "img-1",
		Desired: server.WantRunning, Power: server.NoState, Task: server.Scheduling,
		Status: server.StatusBuilding, Operation: opCreate, CreatedAt: t0, KeepRunning: true}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("state %+v\nwant  %+v", s, want)
	}
}

func TestSpawnFailureGoesBackToScheduling(t *testing.T) {
	s := fold(plus(spawning, &server.SpawnFailed{Host: h1, Reason: "disk full", Attempt: 1, At: t1}))
	if s.Task != server.Scheduling || s.Host != "" || s.Status != server.StatusBuilding || s.Attempts != 1 ||
		!reflect.DeepEqual(s.FailedHosts, []string{h1}) {
		t.Fatalf("after a failed spawn: %+v", s)
	}
}

func TestDesiredAndOperationFollowTheUser(t *testing.T) {
	cases := []struct {
		given   []domain.Event
		desired server.Desired
		op      string
	}{
		{active, server.WantRunning, opCreate},
		{stopping, server.WantStopped, opStop},
		{stopped, server.WantStopped, opStop},
		{starting, server.WantRunning, opStart},
		{rebooting, server.WantRunning, opReboot},
		{deleting, server.WantDeleted, opDelete},
		{deleted, server.WantDeleted, opDelete},
	}
	for i, c := range cases {
		if s := fold(c.given); s.Desired != c.desired || s.Operation != c.op {
			t.Errorf("case %d: desired %q op %q, want %q %q", i, s.Desired, s.Operation, c.desired, c.op)
		}
	}
}

// The whole life of a server driven by commands only: every accepted
// decision is folded, and the status users see is checked after each one.
func TestLifecycleByCommands(t *testing.T) {
	steps := []struct {
		cmd  server.Command
		want server.Status
	}{
		{create("web-1"), server.StatusBuilding},
		{server.Schedule{Host: h1, Operation: opNew, At: t1}, server.StatusBuilding},
		{report(h1, server.ReportSpawned), server.StatusActive},
		{server.Stop{Operation: "op-2", At: t1}, server.StatusActive},
		{report(h1, server.ReportStopped), server.StatusStopped},
		{server.Start{Operation: "op-3", At: t1}, server.StatusStopped},
		{report(h1, server.ReportStarted), server.StatusActive},
		{server.Reboot{Operation: "op-4", At: t1}, server.StatusRebooting},
		{report(h1, server.ReportRebooted), server.StatusActive},
		{server.Reboot{Operation: "op-5", At: t1}, server.StatusRebooting},
		{server.AbortTask{Reason: "hung", At: t1}, server.StatusActive},
		{server.Delete{Operation: "op-6", At: t1}, server.StatusDeleting},
		{report(h1, server.ReportDestroyed), server.StatusDeleted},
	}
	var s server.State
	for i, st := range steps {
		evs, err := server.Decide(s, st.cmd)
		if err != nil {
			t.Fatalf("step %d %T: %v", i, st.cmd, err)
		}
		s = server.Decider.Fold(s, evs)
		if s.Status != st.want {
			t.Fatalf("step %d %T: status %s, want %s", i, st.cmd, s.Status, st.want)
		}
	}
}

func TestDeleteWithoutHostEndsInOneDecision(t *testing.T) {
	for _, given := range [][]domain.Event{building, errored} {
		s := fold(given)
		evs, err := server.Decide(s, server.Delete{Operation: opNew, At: t1})
		if err != nil {
			t.Fatal(err)
		}
		if s = server.Decider.Fold(s, evs); s.Status != server.StatusDeleted {
			t.Fatalf("status %s after delete without host, want DELETED", s.Status)
		}
	}
}

// --- observed state (drift) ------------------------------------------------

func TestObserve(t *testing.T) {
	off := false
	notKept := plus(none, &server.Created{ID: sid, Name: "web-1", Flavor: flv, ImageID: "img-1", Operation: opCreate, KeepRunning: &off, CreatedAt: t0},
		&server.Scheduled{Host: h1, Operation: opCreate, At: t0}, &server.Spawned{Host: h1, At: t0})
	obs := func(p server.Power) server.Observe {
		return server.Observe{Host: h1, Power: p, Operation: opNew, At: t1}
	}
	missing := server.Observe{Host: h1, Missing: true, Operation: opNew, At: t1}
	run(t, []tc{
		{"found stopped: started again", active, obs(server.Shutoff), then(
			&server.PowerObserved{Host: h1, Power: server.Shutoff, Previous: server.Running, At: t1},
			&server.StartRequested{Host: h1, Operation: opNew, At: t1})},
		{"found crashed: started again", active, obs(server.Crashed), then(
			&server.PowerObserved{Host: h1, Power: server.Crashed, Previous: server.Running, At: t1},
			&server.StartRequested{Host: h1, Operation: opNew, At: t1})},
		{"found paused: resumed", active, obs(server.Paused), then(
			&server.PowerObserved{Host: h1, Power: server.Paused, Previous: server.Running, At: t1},
			&server.StartRequested{Host: h1, Operation: opNew, At: t1})},
		{"not kept running: stays stopped", notKept, obs(server.Shutoff), then(
			&server.PowerObserved{Host: h1, Power: server.Shutoff, Previous: server.Running, Desired: server.WantStopped, At: t1})},
		{"found running while stopped: stopped again", stopped, obs(server.Running), then(
			&server.PowerObserved{Host: h1, Power: server.Running, Previous: server.Shutoff, At: t1},
			&server.StopRequested{Host: h1, Operation: opNew, At: t1})},
		{"as recorded, running", active, obs(server.Running), then()},
		{"as recorded, stopped", stopped, obs(server.Shutoff), then()},
		{"gone", active, missing, then(&server.Lost{Host: h1, Reason: "its virtual machine disappeared from host host-1", At: t1})},
		{"gone while stopped", stopped, missing, then(&server.Lost{Host: h1, Reason: "its virtual machine disappeared from host host-1", At: t1})},
		{"during a start", starting, obs(server.Shutoff), then()},
		{"during a stop", stopping, obs(server.Running), then()},
		{"during a reboot", rebooting, missing, then()},
		{"while spawning", spawning, missing, then()},
		{"while deleting", deleting, missing, then()},
		{"failed build holds no host", errored, obs(server.Running), refused(domain.Conflict, `which is on host ""`)},
		{"lost stays lost", plus(active, &server.Lost{Host: h1, Reason: "gone", At: t0}), obs(server.Running), then()},
		{"from another host", active, server.Observe{Host: h2, Power: server.Shutoff, At: t1}, refused(domain.Conflict, `host "host-2" observes server srv-1, which is on host "host-1"`)},
		{"unknown power", active, obs("BLUE"), refused(domain.Invalid, `observed power "BLUE"`)},
	})
}

// A server found stopped is STOPPED while its restoring start runs, and
// ACTIVE once the host reports it started; one not kept running is STOPPED
// and wants to be.
func TestDriftStatus(t *testing.T) {
	healing := fold(plus(active, &server.PowerObserved{Host: h1, Power: server.Shutoff, Previous: server.Running, At: t1},
		&server.StartRequested{Host: h1, Operation: opNew, At: t1}))
	if healing.Status != server.StatusStopped || healing.Task != server.PoweringOn || healing.Desired != server.WantRunning || healing.Operation != opNew {
		t.Fatalf("while healing: %+v", healing)
	}
	healed := fold(plus(active, &server.PowerObserved{Host: h1, Power: server.Shutoff, Previous: server.Running, At: t1},
		&server.StartRequested{Host: h1, Operation: opNew, At: t1}, &server.Started{Host: h1, At: t1}))
	if healed.Status != server.StatusActive || healed.Power != server.Running || healed.Task != server.NoTask {
		t.Fatalf("healed: %+v", healed)
	}
	accepted := fold(plus(active, &server.PowerObserved{Host: h1, Power: server.Shutoff, Previous: server.Running, Desired: server.WantStopped, At: t1}))
	if accepted.Status != server.StatusStopped || accepted.Desired != server.WantStopped {
		t.Fatalf("not kept running: %+v", accepted)
	}
	lost := fold(plus(active, &server.Lost{Host: h1, Reason: "gone", At: t1}))
	if lost.Status != server.StatusError || lost.Reason != "gone" || lost.Host != h1 || lost.Power != server.NoState {
		t.Fatalf("lost: %+v", lost)
	}
}

func TestStateKeepsTheFirstBootCredentials(t *testing.T) {
	s := server.Decider.Fold(server.State{}, []domain.Event{&server.Created{ID: sid, Name: "web-1", Flavor: flv, ImageID: "img-1",
		KeyName: "alice", PublicKey: "ssh-ed25519 AAAA alice", AdminPasswordSealed: []byte("sealed"), CreatedAt: t1}})
	if s.KeyName != "alice" || s.PublicKey != "ssh-ed25519 AAAA alice" || string(s.AdminPasswordSealed) != "sealed" {
		t.Fatalf("state lost the credentials: %+v", s)
	}
}

func TestCreateDataDisks(t *testing.T) {
	with := func(gib ...int) server.Create {
		c := create("web-1")
		c.DataDisksGiB = gib
		return c
	}
	run(t, []tc{
		{"two data disks", none, with(10, 16384), then(&server.Created{ID: sid, Name: "web-1", Flavor: flv, ImageID: "img-1", Operation: opNew,
			DataDisksGiB: []int{10, 16384}, CreatedAt: t1})},
		{"a zero-size disk", none, with(10, 0), refused(domain.Invalid, "data disk 2 is 0 GiB; from 1 to 16384")},
		{"a disk too large", none, with(16385), refused(domain.Invalid, "data disk 1 is 16385 GiB")},
		{"nine disks", none, with(1, 1, 1, 1, 1, 1, 1, 1, 1), refused(domain.Invalid, "9 data disks; at most 8")},
	})
}

// A server id whose create never committed can be abandoned once; a create
// of it is refused afterwards with a reason the user can act on; an
// existing server (in any state, deleted too) cannot be abandoned.
func TestAbandonClosesAnIdThatNeverCommitted(t *testing.T) {
	fresh := server.Decider.Initial(string(sid))
	evs, err := server.Decide(fresh, server.Abandon{Reason: "crash", At: t1})
	if err != nil || len(evs) != 1 {
		t.Fatalf("abandon a fresh id = %v, %v; want one event", evs, err)
	}
	closed := server.Decider.Fold(fresh, evs)
	if again, err := server.Decide(closed, server.Abandon{Reason: "crash", At: t1}); err != nil || len(again) != 0 {
		t.Fatalf("abandon twice = %v, %v; want nothing new", again, err)
	}
	_, err = server.Decide(closed, server.Create{ID: sid, Name: "web-1", Flavor: flv, ImageID: "img-1", Operation: opNew, At: t1})
	if domain.KindOf(err) != domain.Conflict || !strings.Contains(err.Error(), "new Idempotency-Key") {
		t.Fatalf("create of an abandoned id: %v; want a conflict that says to retry with a new key", err)
	}
	for _, h := range histories {
		st := server.Decider.Fold(fresh, h.events)
		if _, err := server.Decide(st, server.Abandon{At: t1}); domain.KindOf(err) != domain.Conflict {
			t.Errorf("abandon a %s server: %v; want a conflict", h.name, err)
		}
	}
}

// A server asks for networks at create; the create saga records one NIC per
// network, in order, while the server waits for its host. The same NICs
// again change nothing; other NICs, or NICs once placed, are refused.
func TestSetNICs(t *testing.T) {
	withNets := func(nets ...string) server.Create {
		c := create("web-1")
		c.Networks = nets
		return c
	}
	nets := plus(none, &server.Created{ID: sid, Name: "web-1", Flavor: flv, ImageID: "img-1", Operation: opCreate, Networks: []string{"net-a", "net-b"}, CreatedAt: t0})
	nics := []server.NIC{{Port: "p-a", Network: "net-a", MAC: "fa:16:3e:00:00:0a", IPs: []string{"10.0.0.5"}},
		{Port: "p-b", Network: "net-b", MAC: "fa:16:3e:00:00:0b", IPs: []string{"10.1.0.5"}}}
	set := server.SetNICs{Operation: opCreate, NICs: nics, At: t1}
	withSet := plus(nets, &server.NICsSet{Operation: opCreate, NICs: nics, At: t1})
	swapped := server.SetNICs{Operation: opCreate, NICs: []server.NIC{nics[1], nics[0]}, At: t1}
	other := server.SetNICs{Operation: opCreate, NICs: []server.NIC{nics[0], {Port: "p-c", Network: "net-b", MAC: "fa:16:3e:00:00:0c"}}, At: t1}
	run(t, []tc{
		{"create with two networks", none, withNets("net-a", "net-b"), then(&server.Created{ID: sid, Name: "web-1", Flavor: flv, ImageID: "img-1", Operation: opNew,
			Networks: []string{"net-a", "net-b"}, CreatedAt: t1})},
		{"nine networks", none, withNets("1", "2", "3", "4", "5", "6", "7", "8", "9"), refused(domain.Invalid, "9 networks; a server has at most 8 NICs")},
		{"an empty network", none, withNets("net-a", ""), refused(domain.Invalid, "network 2 is empty")},
		{"set", nets, set, then(&server.NICsSet{Operation: opCreate, NICs: nics, At: t1})},
		{"set again", withSet, set, then()},
		{"other NICs", withSet, other, refused(domain.Conflict, "already has its NICs")},
		{"out of order", nets, swapped, refused(domain.Invalid, "NIC 1: port \"p-b\"")},
		{"one missing", nets, server.SetNICs{Operation: opCreate, NICs: nics[:1], At: t1}, refused(domain.Invalid, "asked for 2 networks, got 1 NICs")},
		{"another operation", nets, server.SetNICs{Operation: opStart, NICs: nics, At: t1}, refused(domain.Conflict, "NICs of operation op-start")},
		{"placed already", plus(withSet, &server.Scheduled{Host: h1, Operation: opCreate, At: t1}), set, refused(domain.Conflict, "not waiting for its network ports")},
		{"deleted", plus(nets, &server.DeleteRequested{Operation: opDelete, At: t1}, &server.Deleted{At: t1}), set, refused(domain.NotFound, "not found")},
	})
	st := fold(withSet)
	if !slices.Equal(st.Networks, []string{"net-a", "net-b"}) || len(st.NICs) != 2 || st.NICs[1].Port != "p-b" {
		t.Errorf("state after nics_set: networks %v, NICs %+v", st.Networks, st.NICs)
	}
}
