package server_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/server"
)

// randomCommand returns any server command with random fields. Hosts are
// mostly h1, sometimes h2 or none, so that schedules and reports both match
// and miss the server's host. Reports and user actions are drawn more often
// than deletes so that walks get deep before they end.
func randomCommand(rng *rand.Rand, at time.Time) server.Command {
	host := h1
	switch rng.IntN(10) {
	case 0:
		host = h2
	case 1:
		host = ""
	}
	op := fmt.Sprintf("op-%d", rng.IntN(1000))
	// kind: 0 create, 1 schedule, 2 fail, 3 start, 4 stop, 5 reboot,
	// 6 delete, 7 force delete, 8 abort, 9 report.
	weights := []int{4, 2, 1, 2, 2, 2, 1, 1, 1, 10}
	total := 0
	for _, w := range weights {
		total += w
	}
	kind, r := 0, rng.IntN(total)
	for r >= weights[kind] {
		r -= weights[kind]
		kind++
	}
	switch kind {
	case 0:
		names := []string{"web-1", "db", "", " lead", "bell\x07"}
		c := create(names[rng.IntN(len(names))])
		c.Operation, c.At = op, at
		return c
	case 1:
		return server.Schedule{Host: host, Operation: op, At: at}
	case 2:
		return server.Fail{Reason: "build failed", Operation: op, At: at}
	case 3:
		return server.Start{Operation: op, At: at}
	case 4:
		return server.Stop{Operation: op, At: at}
	case 5:
		return server.Reboot{Operation: op, At: at}
	case 6:
		return server.Delete{Operation: op, At: at}
	case 7:
		return server.ForceDelete{Reason: "host gone", At: at}
	case 8:
		return server.AbortTask{Reason: "timed out", At: at}
	default:
		kinds := []server.ReportKind{server.ReportSpawned, server.ReportSpawnFailed, server.ReportStarted,
			server.ReportStopped, server.ReportRebooted, server.ReportActionFailed, server.ReportDestroyed}
		return server.Report{Host: host, Kind: kinds[rng.IntN(len(kinds))], Reason: "host says no", At: at}
	}
}

// statusOfTask is the only status a server may show while a task runs.
var statusOfTask = map[server.Task]server.Status{
	server.Scheduling:  server.StatusBuilding,
	server.Spawning:    server.StatusBuilding,
	server.PoweringOn:  server.StatusStopped,
	server.PoweringOff: server.StatusActive,
	server.RebootTask:  server.StatusRebooting,
	server.DeleteTask:  server.StatusDeleting,
}

// invariants returns what is wrong with a state, or "".
func invariants(s server.State) string {
	if !s.Exists {
		return ""
	}
	switch s.Status {
	case server.StatusBuilding, server.StatusActive, server.StatusStopped, server.StatusRebooting,
		server.StatusDeleting, server.StatusDeleted, server.StatusError:
	default:
		return fmt.Sprintf("unknown status %q", s.Status)
	}
	if s.Task != server.NoTask {
		want, ok := statusOfTask[s.Task]
		if !ok {
			return fmt.Sprintf("unknown task %q", s.Task)
		}
		if s.Status != want {
			return fmt.Sprintf("task %s while %s, want %s", s.Task, s.Status, want)
		}
	}
	switch s.Status {
	case server.StatusBuilding:
		if s.Task != server.Scheduling && s.Task != server.Spawning {
			return fmt.Sprintf("BUILDING with task %q", s.Task)
		}
	case server.StatusRebooting:
		if s.Task != server.RebootTask {
			return fmt.Sprintf("REBOOTING with task %q", s.Task)
		}
	case server.StatusDeleting:
		if s.Task != server.DeleteTask {
			return fmt.Sprintf("DELETING with task %q", s.Task)
		}
	case server.StatusActive:
		if s.Power != server.Running {
			return fmt.Sprintf("ACTIVE with power %s", s.Power)
		}
	case server.StatusStopped:
		if s.Power != server.Shutoff {
			return fmt.Sprintf("STOPPED with power %s", s.Power)
		}
	case server.StatusError:
		if s.Host != "" {
			return fmt.Sprintf("ERROR but still on host %q", s.Host)
		}
		if s.Reason == "" {
			return "ERROR without a reason"
		}
		if s.Task != server.NoTask {
			return fmt.Sprintf("ERROR with task %q", s.Task)
		}
	case server.StatusDeleted:
		if s.Host != "" || s.Task != server.NoTask {
			return fmt.Sprintf("DELETED with host %q task %q", s.Host, s.Task)
		}
	}
	if (s.Task == server.Scheduling) != (s.Status == server.StatusBuilding && s.Host == "") {
		return fmt.Sprintf("task %q with host %q while %s", s.Task, s.Host, s.Status)
	}
	return ""
}

func TestRandomCommandSequencesKeepInvariants(t *testing.T) {
	const sequences, length = 4000, 60
	rng := rand.New(rand.NewPCG(2025, 3))
	seenStatus := map[server.Status]int{}
	seenTask := map[server.Task]int{}
	accepted := 0

	for n := range sequences {
		var s server.State
		var trace []string
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("sequence %d: %s\ntrace:\n  %s", n, fmt.Sprintf(format, args...), strings.Join(trace, "\n  "))
		}
		at := t0
		for range length {
			at = at.Add(time.Duration(rng.IntN(120)) * time.Second)
			cmd := randomCommand(rng, at)
			before := s
			evs, err := server.Decide(s, cmd)
			trace = append(trace, fmt.Sprintf("%s %T%+v -> %s err=%v", s.Status, cmd, cmd, show(evs), err))

			if err != nil {
				if domain.KindOf(err) == 0 {
					fail("refusal is not a *domain.Error: %v", err)
				}
				if evs != nil {
					fail("refusal returned events")
				}
				if before.Status == server.StatusDeleted {
					_, isReport := cmd.(server.Report)
					_, isCreate := cmd.(server.Create)
					if !isReport && !isCreate && domain.KindOf(err) != domain.NotFound {
						fail("%T on a DELETED server: kind %d, want NotFound", cmd, domain.KindOf(err))
					}
				}
				continue
			}
			accepted++
			if _, isDelete := cmd.(server.Delete); len(evs) == 0 && !(isDelete && before.Status == server.StatusDeleting) {
				// Only a repeated delete is accepted as a no-op: the caller
				// gets the delete already in progress.
				fail("accepted %T without events", cmd)
			}
			if before.Status == server.StatusDeleted {
				fail("%T changed a DELETED server", cmd)
			}
			if r, ok := cmd.(server.Report); ok && r.Host != before.Host {
				fail("accepted a report from %q for a server on %q", r.Host, before.Host)
			}
			s = server.Decider.Fold(s, evs)
			if msg := invariants(s); msg != "" {
				fail("%s: %+v", msg, s)
			}
			if before.Exists && s.ID != before.ID {
				fail("id changed from %q to %q", before.ID, s.ID)
			}
			if before.Host != "" && s.Host != "" && s.Host != before.Host {
				fail("server moved from host %q to %q", before.Host, s.Host)
			}
			seenStatus[s.Status]++
			seenTask[s.Task]++
		}
	}

	// The random walk must actually reach every status and task, or the
	// invariants above were checked on too little.
	for _, st := range []server.Status{server.StatusBuilding, server.StatusActive, server.StatusStopped,
		server.StatusRebooting, server.StatusDeleting, server.StatusDeleted, server.StatusError} {
		if seenStatus[st] == 0 {
			t.Errorf("no random sequence reached %s", st)
		}
	}
	for task := range statusOfTask {
		if seenTask[task] == 0 {
			t.Errorf("no random sequence reached task %s", task)
		}
	}
	t.Logf("%d accepted decisions; statuses %v", accepted, seenStatus)
}

// Once DELETED, nothing changes the server: every command is refused, with
// NotFound except for host reports (stale, Conflict) and Create (the id is
// taken, Conflict).
func TestDeletedIsAbsorbing(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, given := range [][]domain.Event{deleted, plus(building, &server.DeleteRequested{Operation: opDelete}, &server.Deleted{})} {
		s := fold(given)
		for range 2000 {
			cmd := randomCommand(rng, t1)
			evs, err := server.Decide(s, cmd)
			if err == nil {
				t.Fatalf("%T%+v accepted on a DELETED server: %s", cmd, cmd, show(evs))
			}
			want := domain.NotFound
			switch cmd.(type) {
			case server.Report, server.Create:
				want = domain.Conflict
			}
			if k := domain.KindOf(err); k != want {
				t.Fatalf("%T%+v on a DELETED server: kind %d (%v), want %d", cmd, cmd, k, err, want)
			}
		}
	}
}

// The invariant checker itself must catch broken states, or the property
// test above proves nothing.
func TestInvariantsRejectBrokenStates(t *testing.T) {
	ok := fold(active)
	if msg := invariants(ok); msg != "" {
		t.Fatalf("a healthy ACTIVE server fails the invariants: %s", msg)
	}
	broken := map[string]func(s *server.State){
		"unknown status":     func(s *server.State) { s.Status = "PAUSED" },
		"task vs status":     func(s *server.State) { s.Task = server.PoweringOn },
		"error on a host":    func(s *server.State) { s.Status, s.Reason = server.StatusError, "x" },
		"error no reason":    func(s *server.State) { s.Status, s.Host = server.StatusError, "" },
		"rebooting, no task": func(s *server.State) { s.Status = server.StatusRebooting },
		"deleted on a host":  func(s *server.State) { s.Status = server.StatusDeleted },
		"active, shut off":   func(s *server.State) { s.Power = server.Shutoff },
	}
	for name, breakIt := range broken {
		s := ok
		breakIt(&s)
		if invariants(s) == "" {
			t.Errorf("%s: %+v passes the invariants", name, s)
		}
	}
}
