package operation_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/decidertest"
	"github.com/keel-cloud/keel/domain/operation"
)

// --- fixtures -------------------------------------------------------------

const oid = operation.ID("op-1")

var (
	t0     = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tSpawn = t0.Add(10 * time.Second) // when the first step completed and the second began
	tFail  = tSpawn.Add(time.Minute)  // when the second step failed
	specs  = []operation.StepSpec{{Name: "schedule", Timeout: time.Minute}, {Name: "spawn", Timeout: 5 * time.Minute}}
)

var plus = decidertest.Plus

// Histories of a two-step operation (schedule, then spawn).
var (
	none         []domain.Event
	scheduling   = plus(none, &operation.Began{ID: oid, Kind: "server.create", ResourceType: "server", ResourceID: "srv-1", Steps: specs, At: t0}, &operation.StepStarted{Step: "schedule", Deadline: t0.Add(time.Minute), At: t0})
	spawning     = plus(scheduling, &operation.StepSucceeded{Step: "schedule", At: tSpawn}, &operation.StepStarted{Step: "spawn", Deadline: tSpawn.Add(5 * time.Minute), At: tSpawn})
	succeeded    = plus(spawning, &operation.StepSucceeded{Step: "spawn", At: tFail}, &operation.OperationSucceeded{At: tFail})
	compensFirst = plus(scheduling, &operation.StepFailed{Step: "schedule", Reason: "no host has room", At: tSpawn})
	compensating = plus(spawning, &operation.StepFailed{Step: "spawn", Reason: "image is corrupt", At: tFail})
	failed       = plus(compensating, &operation.OperationFailed{Reason: "image is corrupt", Compensated: []string{"schedule"}, At: tFail})
)

func fold(events []domain.Event) operation.State {
	return decidertest.Fold(operation.Decider, string(oid), events)
}

// --- given/when/then ------------------------------------------------------

type tc struct {
	name  string
	given []domain.Event
	when  operation.Command
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
		t.Run(c.name, func(t *testing.T) { decidertest.Decide(t, operation.Decider, string(oid), c.given, c.when, c.want) })
	}
}

// --- decisions ------------------------------------------------------------

func TestBegin(t *testing.T) {
	begin := operation.Begin{ID: oid, Kind: "server.create", ResourceType: "server", ResourceID: "srv-1", Steps: specs, At: t0}
	empty := begin
	empty.Steps = nil
	run(t, []tc{
		{"starts the first step with its deadline", none, begin, then(
			&operation.Began{ID: oid, Kind: "server.create", ResourceType: "server", ResourceID: "srv-1", Steps: specs, At: t0},
			&operation.StepStarted{Step: "schedule", Deadline: t0.Add(time.Minute), At: t0})},
		{"no steps", none, empty, refused(domain.Invalid, "operation op-1 has no steps")},
		{"already running", scheduling, begin, refused(domain.Conflict, "operation op-1 already exists")},
		{"already ended", succeeded, begin, refused(domain.Conflict, "already exists")},
	})
}

func TestCompleteStep(t *testing.T) {
	at := tSpawn.Add(time.Minute)
	run(t, []tc{
		{"first step starts the next", scheduling, operation.CompleteStep{Step: "schedule", At: tSpawn}, then(
			&operation.StepSucceeded{Step: "schedule", At: tSpawn},
			&operation.StepStarted{Step: "spawn", Deadline: tSpawn.Add(5 * time.Minute), At: tSpawn})},
		{"last step succeeds", spawning, operation.CompleteStep{Step: "spawn", At: at}, then(
			&operation.StepSucceeded{Step: "spawn", At: at},
			&operation.OperationSucceeded{At: at})},
		{"pending step", scheduling, operation.CompleteStep{Step: "spawn", At: at},
			refused(domain.Conflict, `step spawn of operation op-1 is not running (operation running, current step "schedule")`)},
		{"finished step", spawning, operation.CompleteStep{Step: "schedule", At: at},
			refused(domain.Conflict, `step schedule of operation op-1 is not running`, `current step "spawn"`)},
		{"unknown step", spawning, operation.CompleteStep{Step: "bake", At: at}, refused(domain.Conflict, "step bake")},
		{"while compensating", compensating, operation.CompleteStep{Step: "spawn", At: at},
			refused(domain.Conflict, `(operation compensating, current step "")`)},
		{"never began", none, operation.CompleteStep{Step: "schedule", At: at}, refused(domain.NotFound, "not found")},
	})
}

func TestFailStep(t *testing.T) {
	run(t, []tc{
		{"current step", spawning, operation.FailStep{Step: "spawn", Reason: "disk full", At: tFail},
			then(&operation.StepFailed{Step: "spawn", Reason: "disk full", At: tFail})},
		{"first step", scheduling, operation.FailStep{Step: "schedule", Reason: "no room", At: tFail},
			then(&operation.StepFailed{Step: "schedule", Reason: "no room", At: tFail})},
		{"pending step", scheduling, operation.FailStep{Step: "spawn", Reason: "x", At: tFail},
			refused(domain.Conflict, "step spawn of operation op-1 is not running")},
		{"finished step", spawning, operation.FailStep{Step: "schedule", Reason: "x", At: tFail},
			refused(domain.Conflict, "step schedule of operation op-1 is not running")},
		{"failed step again", compensating, operation.FailStep{Step: "spawn", Reason: "x", At: tFail},
			refused(domain.Conflict, "operation compensating")},
		{"never began", none, operation.FailStep{Step: "spawn", At: tFail}, refused(domain.NotFound, "not found")},
		{"with the host's account for admins", spawning,
			operation.FailStep{Step: "spawn", Reason: "disk full", Detail: "write /pool/srv-1/root.qcow2: no space left on device", At: tFail},
			then(&operation.StepFailed{Step: "spawn", Reason: "disk full", Detail: "write /pool/srv-1/root.qcow2: no space left on device", At: tFail})},
		{"a 4 KiB detail is kept whole", spawning, operation.FailStep{Step: "spawn", Reason: "disk full", Detail: longDetail, At: tFail},
			then(&operation.StepFailed{Step: "spawn", Reason: "disk full", Detail: longDetail, At: tFail})},
		{"a longer detail", spawning, operation.FailStep{Step: "spawn", Reason: "disk full", Detail: longDetail + "x", At: tFail},
			refused(domain.Invalid, "detail is 4097 bytes long; the limit is 4096")},
		{"a detail of two lines", spawning, operation.FailStep{Step: "spawn", Reason: "disk full", Detail: "error:\nno space", At: tFail},
			refused(domain.Invalid, "detail must not contain control characters")},
		{"a detail that reorders the terminal", spawning, operation.FailStep{Step: "spawn", Reason: "disk full", Detail: "ok \u202e", At: tFail},
			refused(domain.Invalid, "detail must not contain bidirectional control characters")},
	})
}

// longDetail is a host's account at the limit, as long as a report's may be.
var longDetail = strings.Repeat("d", operation.MaxDetail)

func TestExpireStep(t *testing.T) {
	deadline := t0.Add(time.Minute)
	overdue := func(step, within string, at time.Time) decidertest.Outcome {
		return then(&operation.StepFailed{Step: step, Reason: "step " + step + " did not finish within " + within, At: at})
	}
	run(t, []tc{
		{"before the deadline", scheduling, operation.ExpireStep{Step: "schedule", At: deadline.Add(-time.Nanosecond)},
			refused(domain.Conflict, "step schedule of operation op-1 is not overdue until 2025-03-01T12:01:00Z")},
		{"at the deadline", scheduling, operation.ExpireStep{Step: "schedule", At: deadline}, overdue("schedule", "1m0s", deadline)},
		{"after the deadline", scheduling, operation.ExpireStep{Step: "schedule", At: deadline.Add(time.Hour)}, overdue("schedule", "1m0s", deadline.Add(time.Hour))},
		{"second step uses its own timeout", spawning, operation.ExpireStep{Step: "spawn", At: tSpawn.Add(5 * time.Minute)},
			overdue("spawn", "5m0s", tSpawn.Add(5*time.Minute))},
		{"second step before its deadline", spawning, operation.ExpireStep{Step: "spawn", At: deadline.Add(time.Minute)},
			refused(domain.Conflict, "not overdue until 2025-03-01T12:05:10Z")},
		{"pending step", scheduling, operation.ExpireStep{Step: "spawn", At: deadline.Add(time.Hour)},
			refused(domain.Conflict, `step spawn of operation op-1 is not running (operation running, current step "schedule")`)},
		{"finished step", spawning, operation.ExpireStep{Step: "schedule", At: deadline.Add(time.Hour)},
			refused(domain.Conflict, "step schedule of operation op-1 is not running")},
		{"while compensating", compensating, operation.ExpireStep{Step: "spawn", At: deadline.Add(time.Hour)},
			refused(domain.Conflict, "operation compensating")},
	})
}

func TestFinish(t *testing.T) {
	at := tFail.Add(time.Minute)
	run(t, []tc{
		{"running: fails the current step, then the operation", spawning,
			operation.Finish{Reason: "superseded by delete", Compensated: []string{"schedule"}, At: at}, then(
				&operation.StepFailed{Step: "spawn", Reason: "superseded by delete", At: at},
				&operation.OperationFailed{Reason: "superseded by delete", Compensated: []string{"schedule"}, At: at})},
		{"running the first step", scheduling, operation.Finish{Reason: "superseded", At: at}, then(
			&operation.StepFailed{Step: "schedule", Reason: "superseded", At: at},
			&operation.OperationFailed{Reason: "superseded", At: at})},
		{"compensating keeps the first error", compensating,
			operation.Finish{Reason: "compensation done", Compensated: []string{"schedule"}, At: at},
			then(&operation.OperationFailed{Reason: "image is corrupt", Compensated: []string{"schedule"}, At: at})},
		{"compensating after an expiry", plus(scheduling, &operation.StepFailed{Step: "schedule", Reason: "step schedule did not finish within 1m0s", At: at}),
			operation.Finish{Reason: "gave up", At: at},
			then(&operation.OperationFailed{Reason: "step schedule did not finish within 1m0s", At: at})},
		{"compensating without an error uses the given reason", plus(scheduling, &operation.StepFailed{Step: "schedule", At: at}),
			operation.Finish{Reason: "gave up", At: at},
			then(&operation.OperationFailed{Reason: "gave up", At: at})},
		{"never began", none, operation.Finish{Reason: "x", At: at}, refused(domain.NotFound, "operation op-1 not found")},
		{"running: the host's account goes with the reason to the step and the operation", spawning,
			operation.Finish{Reason: "build failed on 3 hosts", Detail: "qemu: could not open /pool/srv-1/root.qcow2", Compensated: []string{"schedule"}, At: at}, then(
				&operation.StepFailed{Step: "spawn", Reason: "build failed on 3 hosts", Detail: "qemu: could not open /pool/srv-1/root.qcow2", At: at},
				&operation.OperationFailed{Reason: "build failed on 3 hosts", Detail: "qemu: could not open /pool/srv-1/root.qcow2", Compensated: []string{"schedule"}, At: at})},
		{"compensating keeps the first error's detail", withDetail,
			operation.Finish{Reason: "compensation done", Detail: "another account", At: at},
			then(&operation.OperationFailed{Reason: "image is corrupt", Detail: "sha256 of /images/img-1 is 9f86", At: at})},
		{"compensating after an error without detail: none", compensating,
			operation.Finish{Reason: "compensation done", Detail: "another account", At: at},
			then(&operation.OperationFailed{Reason: "image is corrupt", At: at})},
		{"compensating without an error uses the given reason and detail", plus(scheduling, &operation.StepFailed{Step: "schedule", At: at}),
			operation.Finish{Reason: "gave up", Detail: "the account", At: at},
			then(&operation.OperationFailed{Reason: "gave up", Detail: "the account", At: at})},
		{"a detail over the limit", spawning, operation.Finish{Reason: "x", Detail: longDetail + "x", At: at},
			refused(domain.Invalid, "detail is 4097 bytes long")},
	})
}

// withDetail: the spawn failed with the host's account, compensation runs.
var withDetail = plus(spawning, &operation.StepFailed{Step: "spawn", Reason: "image is corrupt", Detail: "sha256 of /images/img-1 is 9f86", At: tFail})

// The operation keeps the account behind its error, and each step the
// account behind its own; a later error without one leaves none behind.
func TestEvolveKeepsTheDetail(t *testing.T) {
	at := tFail.Add(time.Minute)
	s := fold(plus(withDetail, &operation.OperationFailed{Reason: "image is corrupt", Detail: "sha256 of /images/img-1 is 9f86", Compensated: []string{"schedule"}, At: at}))
	if s.Error != "image is corrupt" || s.Detail != "sha256 of /images/img-1 is 9f86" {
		t.Fatalf("operation: error %q detail %q", s.Error, s.Detail)
	}
	if s.Steps[1].Error != "image is corrupt" || s.Steps[1].Detail != "sha256 of /images/img-1 is 9f86" || s.Steps[0].Detail != "" {
		t.Fatalf("steps: %+v", s.Steps)
	}
	rewoundEvs := plus(spawning, &operation.Rewound{From: "spawn", To: "schedule", Reason: "spawn on h1 failed (disk full); trying another host",
		Detail: "write /pool/srv-1/root.qcow2: no space left on device", At: at},
		&operation.StepStarted{Step: "schedule", Deadline: at.Add(time.Minute), At: at})
	rewound := fold(rewoundEvs)
	if st := rewound.Steps[1]; st.Status != operation.StepIsPending || st.Detail != "write /pool/srv-1/root.qcow2: no space left on device" || rewound.Detail != "" {
		t.Fatalf("after a rewind: step %+v, operation detail %q", st, rewound.Detail)
	}
	// The retry fails by its deadline: the step's error is the expiry, and
	// the first host's account no longer stands beside it.
	again := fold(plus(rewoundEvs, &operation.StepSucceeded{Step: "schedule", At: at}, &operation.StepStarted{Step: "spawn", Deadline: at.Add(5 * time.Minute), At: at},
		&operation.StepFailed{Step: "spawn", Reason: "step spawn did not finish within 5m0s", At: at.Add(5 * time.Minute)}))
	if st := again.Steps[1]; st.Error != "step spawn did not finish within 5m0s" || st.Detail != "" || again.Detail != "" {
		t.Fatalf("after the retry expired: step %+v, operation detail %q", st, again.Detail)
	}
}

// Events stored before the detail existed read back without one.
func TestEventsWithoutDetailDecode(t *testing.T) {
	for typ, data := range map[string]string{
		operation.TypeStepFailed: `{"step":"spawn","reason":"disk full","at":"2025-03-01T12:00:00Z"}`,
		operation.TypeRewound:    `{"from":"spawn","to":"schedule","reason":"disk full","at":"2025-03-01T12:00:00Z"}`,
		operation.TypeFailed:     `{"reason":"disk full","compensated":["schedule"],"at":"2025-03-01T12:00:00Z"}`,
	} {
		ev, err := operation.Decider.Registry.Decode(typ, []byte(data))
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		raw, err := json.Marshal(ev)
		if err != nil || strings.Contains(string(raw), "detail") {
			t.Errorf("%s re-encodes as %s (%v): an empty detail must be omitted", typ, raw, err)
		}
		if d := reflect.ValueOf(ev).Elem().FieldByName("Detail"); !d.IsValid() || d.String() != "" {
			t.Errorf("%s: detail %v, want an empty one", typ, d)
		}
	}
}

// Every command on an ended operation is a Conflict that says how it ended.
func TestTerminalRefusesEverything(t *testing.T) {
	at := tFail.Add(time.Hour)
	commands := []operation.Command{
		operation.CompleteStep{Step: "spawn", At: at},
		operation.CompleteStep{Step: "schedule", At: at},
		operation.FailStep{Step: "spawn", Reason: "x", At: at},
		operation.ExpireStep{Step: "spawn", At: at},
		operation.Finish{Reason: "x", At: at},
		operation.Begin{ID: oid, Steps: specs, At: at},
	}
	for _, end := range []struct {
		name  string
		given []domain.Event
		msg   string
	}{
		{"succeeded", succeeded, "operation op-1 has already succeeded"},
		{"failed", failed, "operation op-1 has already failed"},
	} {
		for _, cmd := range commands {
			t.Run(fmt.Sprintf("%s/%T", end.name, cmd), func(t *testing.T) {
				got, err := operation.Decide(fold(end.given), cmd)
				msg := end.msg
				if _, ok := cmd.(operation.Begin); ok {
					msg = "operation op-1 already exists"
				}
				refused(domain.Conflict, msg).Check(t, got, err)
			})
		}
	}
}

// --- evolve ---------------------------------------------------------------

func stepStatuses(s operation.State) string {
	parts := make([]string, len(s.Steps))
	for i, st := range s.Steps {
		parts[i] = st.Name + ":" + string(st.Status)
	}
	return strings.Join(parts, " ")
}

func TestEvolve(t *testing.T) {
	three := []operation.StepSpec{{Name: "a", Timeout: time.Minute}, {Name: "b", Timeout: time.Minute}, {Name: "c", Timeout: time.Minute}}
	began := plus(none, &operation.Began{ID: oid, Steps: three, At: t0}, &operation.StepStarted{Step: "a", Deadline: t0.Add(time.Minute), At: t0})
	bRunning := plus(began, &operation.StepSucceeded{Step: "a", At: t0}, &operation.StepStarted{Step: "b", Deadline: t0.Add(time.Minute), At: t0})
	cases := []struct {
		name    string
		given   []domain.Event
		status  operation.Status
		current string
		steps   string
		err     string
	}{
		{"began", began, operation.Running, "a", "a:running b:pending c:pending", ""},
		{"second step", bRunning, operation.Running, "b", "a:succeeded b:running c:pending", ""},
		{"step failed", plus(bRunning, &operation.StepFailed{Step: "b", Reason: "boom"}), operation.Compensating, "",
			"a:succeeded b:failed c:pending", "boom"},
		{"failed: pending skipped, listed compensated", plus(bRunning, &operation.StepFailed{Step: "b", Reason: "boom"},
			&operation.OperationFailed{Reason: "boom", Compensated: []string{"a"}}), operation.Failed, "",
			"a:compensated b:failed c:skipped", "boom"},
		{"failed: unlisted success stays succeeded", plus(bRunning, &operation.StepFailed{Step: "b", Reason: "boom"},
			&operation.OperationFailed{Reason: "boom"}), operation.Failed, "",
			"a:succeeded b:failed c:skipped", "boom"},
		{"failed: listing a failed or pending step does not compensate it", plus(bRunning, &operation.StepFailed{Step: "b", Reason: "boom"},
			&operation.OperationFailed{Reason: "boom", Compensated: []string{"b", "c"}}), operation.Failed, "",
			"a:succeeded b:failed c:skipped", "boom"},
		{"first step failed", plus(began, &operation.StepFailed{Step: "a", Reason: "x"}, &operation.OperationFailed{Reason: "x"}),
			operation.Failed, "", "a:failed b:skipped c:skipped", "x"},
		{"succeeded", plus(bRunning, &operation.StepSucceeded{Step: "b"}, &operation.StepStarted{Step: "c"},
			&operation.StepSucceeded{Step: "c"}, &operation.OperationSucceeded{}), operation.Succeeded, "",
			"a:succeeded b:succeeded c:succeeded", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := fold(c.given)
			if s.Status != c.status || s.CurrentStep() != c.current || stepStatuses(s) != c.steps || s.Error != c.err {
				t.Fatalf("status %s current %q steps %q error %q\nwant   %s current %q steps %q error %q",
					s.Status, s.CurrentStep(), stepStatuses(s), s.Error, c.status, c.current, c.steps, c.err)
			}
			if s.Terminal() != (c.status == operation.Succeeded || c.status == operation.Failed) {
				t.Errorf("Terminal() = %v for %s", s.Terminal(), s.Status)
			}
			if s.CurrentStep() == "" && s.Current != -1 {
				t.Errorf("no running step but Current = %d", s.Current)
			}
		})
	}
}

func TestEvolveRecordsTimes(t *testing.T) {
	s := fold(compensating)
	want := []operation.Step{
		{Name: "schedule", Status: operation.StepIsSucceeded, Timeout: time.Minute, StartedAt: t0, FinishedAt: tSpawn, Deadline: t0.Add(time.Minute)},
		{Name: "spawn", Status: operation.StepIsFailed, Timeout: 5 * time.Minute, StartedAt: tSpawn, FinishedAt: tFail,
			Deadline: tSpawn.Add(5 * time.Minute), Error: "image is corrupt"},
	}
	if !reflect.DeepEqual(s.Steps, want) {
		t.Fatalf("steps\n got %+v\nwant %+v", s.Steps, want)
	}
	if s.ID != oid || !s.Exists || s.Kind != "server.create" || s.ResourceType != "server" || s.ResourceID != "srv-1" {
		t.Fatalf("identity not recorded: %+v", s)
	}
}

// States are cached and shared: folding an event must never change the
// steps of the state it started from.
func TestEvolveDoesNotMutateEarlierStates(t *testing.T) {
	before := fold(spawning)
	snapshot := slices.Clone(before.Steps)
	for _, ev := range []domain.Event{
		&operation.StepSucceeded{Step: "spawn", At: tFail},
		&operation.StepFailed{Step: "spawn", Reason: "x", At: tFail},
		&operation.OperationFailed{Reason: "x", Compensated: []string{"schedule"}, At: tFail},
		&operation.StepStarted{Step: "schedule", At: tFail},
	} {
		_ = operation.Evolve(before, ev)
		if !reflect.DeepEqual(before.Steps, snapshot) {
			t.Fatalf("%s changed the earlier state's steps: %+v", ev.EventType(), before.Steps)
		}
	}
	// Began must not alias the command's slice either.
	specsCopy := slices.Clone(specs)
	s := fold(scheduling)
	s.Steps[0].Name = "mutated"
	if !reflect.DeepEqual(specs, specsCopy) {
		t.Fatal("the state's steps alias the Began event's specs")
	}
}

func TestCurrentStepOutOfRange(t *testing.T) {
	for _, cur := range []int{-1, 2, 99} {
		s := operation.State{Steps: []operation.Step{{Name: "a"}, {Name: "b"}}, Current: cur}
		if s.CurrentStep() != "" {
			t.Errorf("Current %d: CurrentStep() = %q, want empty", cur, s.CurrentStep())
		}
	}
}

// Step names identify steps (index looks them up by name), so a plan with
// the same name twice can never finish: completing the first "a" starts "a"
// again at index 0 and the second one stays pending forever. Begin should
// refuse such a plan as Invalid. An empty step name (which CurrentStep cannot
// tell apart from "no step running") must likewise be refused or work.
func TestBeginRefusesDuplicateStepNames(t *testing.T) {
	for _, steps := range [][]operation.StepSpec{
		{{Name: "a", Timeout: time.Minute}, {Name: "a", Timeout: time.Minute}},
		{{Name: "", Timeout: time.Minute}},
	} {
		evs, err := operation.Decide(operation.State{}, operation.Begin{ID: oid, Steps: steps, At: t0})
		if domain.KindOf(err) == domain.Invalid {
			continue
		}
		if err != nil {
			t.Fatalf("steps %+v: refused with %v, want Invalid", steps, err)
		}
		// Accepted: then completing every step in turn must end the operation.
		s := operation.Decider.Fold(operation.State{}, evs)
		for range steps {
			evs, err := operation.Decide(s, operation.CompleteStep{Step: s.CurrentStep(), At: t0})
			if err != nil {
				t.Fatalf("steps %+v: %v", steps, err)
			}
			s = operation.Decider.Fold(s, evs)
		}
		if s.Status != operation.Succeeded {
			t.Errorf("BUG: steps %+v were accepted, but after completing %d steps the operation is %s with steps %q; "+
				"Begin should refuse duplicate step names", steps, len(steps), s.Status, stepStatuses(s))
		}
	}
}

func TestRewindKeepsTheDetail(t *testing.T) {
	rewind := operation.Rewind{From: "spawn", To: "schedule", Reason: "spawn on h1 failed (disk full); trying another host",
		Detail: "write /pool/srv-1/root.qcow2: no space left on device", At: tFail}
	long := rewind
	long.Detail = longDetail + "x"
	run(t, []tc{
		{"carried by the event", spawning, rewind, then(
			&operation.Rewound{From: "spawn", To: "schedule", Reason: "spawn on h1 failed (disk full); trying another host",
				Detail: "write /pool/srv-1/root.qcow2: no space left on device", At: tFail},
			&operation.StepStarted{Step: "schedule", Deadline: tFail.Add(time.Minute), At: tFail})},
		{"over the limit", spawning, long, refused(domain.Invalid, "detail is 4097 bytes long")},
	})
}

func TestRewindRetriesFromAnEarlierStep(t *testing.T) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	s := operation.Decider.Fold(operation.Decider.Initial("op"), []domain.Event{
		&operation.Began{ID: "op", Kind: "server.create", Steps: []operation.StepSpec{{Name: "schedule", Timeout: time.Minute}, {Name: "spawn", Timeout: time.Minute}}, At: at},
		&operation.StepStarted{Step: "schedule", Deadline: at.Add(time.Minute), At: at},
		&operation.StepSucceeded{Step: "schedule", At: at},
		&operation.StepStarted{Step: "spawn", Deadline: at.Add(time.Minute), At: at},
	})
	later := at.Add(time.Second)
	evs, err := operation.Decide(s, operation.Rewind{From: "spawn", To: "schedule", Reason: "disk full", At: later})
	if err != nil || len(evs) != 2 {
		t.Fatalf("rewind: %v %v", evs, err)
	}
	s = operation.Decider.Fold(s, evs)
	if s.CurrentStep() != "schedule" || s.Steps[1].Status != operation.StepIsPending || s.Steps[1].Error != "disk full" || s.Retries != 1 || s.Status != operation.Running {
		t.Fatalf("after rewind: %+v", s)
	}
	if _, err := operation.Decide(s, operation.Rewind{From: "spawn", To: "schedule", At: later}); domain.KindOf(err) != domain.Conflict {
		t.Fatalf("rewind from a step that is not running: %v", err)
	}
	if _, err := operation.Decide(s, operation.Rewind{From: "schedule", To: "spawn", At: later}); domain.KindOf(err) != domain.Invalid {
		t.Fatalf("rewind forward: %v", err)
	}
}
