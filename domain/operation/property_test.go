package operation_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/operation"
)

// randomPlan returns 1 to 4 uniquely named steps with timeouts of 1 to 10 minutes.
func randomPlan(rng *rand.Rand) []operation.StepSpec {
	plan := make([]operation.StepSpec, 1+rng.IntN(4))
	for i := range plan {
		plan[i] = operation.StepSpec{Name: fmt.Sprintf("step%d", i), Timeout: time.Duration(1+rng.IntN(10)) * time.Minute}
	}
	return plan
}

// randomCommand returns a complete, fail, expire or finish command. The step
// is usually the running one (so that walks make progress) and otherwise any
// planned step or one that is not in the plan.
func randomCommand(rng *rand.Rand, s operation.State, at time.Time) operation.Command {
	step := s.CurrentStep()
	if rng.IntN(4) == 0 {
		if i := rng.IntN(len(s.Steps) + 1); i < len(s.Steps) {
			step = s.Steps[i].Name
		} else {
			step = "unplanned"
		}
	}
	switch r := rng.IntN(20); {
	case r < 10:
		return operation.CompleteStep{Step: step, At: at}
	case r < 12:
		return operation.FailStep{Step: step, Reason: "host said no", At: at}
	case r < 18:
		return operation.ExpireStep{Step: step, At: at}
	default:
		return operation.Finish{Reason: "superseded", Compensated: []string{"step0"}, At: at}
	}
}

// opInvariants returns what is wrong with the shape of a state, or "".
func opInvariants(s operation.State) string {
	count := map[operation.StepStatus]int{}
	for _, st := range s.Steps {
		count[st.Status]++
		if st.Status == operation.StepIsRunning && !st.Deadline.Equal(st.StartedAt.Add(st.Timeout)) {
			return fmt.Sprintf("step %s deadline %s, want start %s + %s", st.Name, st.Deadline, st.StartedAt, st.Timeout)
		}
	}
	n := len(s.Steps)
	switch s.Status {
	case operation.Running:
		if count[operation.StepIsRunning] != 1 || s.Current < 0 || s.Steps[s.Current].Status != operation.StepIsRunning {
			return "running without exactly one running step at Current"
		}
		if count[operation.StepIsSucceeded] != s.Current || count[operation.StepIsPending] != n-s.Current-1 {
			return "running: steps before Current must have succeeded and those after be pending"
		}
	case operation.Compensating:
		if count[operation.StepIsRunning] != 0 || count[operation.StepIsFailed] != 1 || s.Current != -1 || s.Error == "" {
			return "compensating needs one failed step, none running, an error"
		}
	case operation.Succeeded:
		if count[operation.StepIsSucceeded] != n || s.Current != -1 {
			return "succeeded with a step that did not succeed"
		}
	case operation.Failed:
		if count[operation.StepIsPending]+count[operation.StepIsRunning] != 0 || count[operation.StepIsFailed] != 1 || s.Current != -1 || s.Error == "" {
			return "failed needs one failed step, none pending or running, an error"
		}
	default:
		return fmt.Sprintf("unknown status %q", s.Status)
	}
	return ""
}

func TestRandomOperationsAlwaysEnd(t *testing.T) {
	const sequences, maxCommands = 3000, 25
	rng := rand.New(rand.NewPCG(42, 7))
	ends := map[string]int{}

	for n := range sequences {
		plan := randomPlan(rng)
		at := t0
		evs, err := operation.Decide(operation.State{}, operation.Begin{ID: oid, Kind: "test", Steps: plan, At: at})
		if err != nil {
			t.Fatal(err)
		}
		s := operation.Decider.Fold(operation.State{}, evs)
		var trace []string
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("sequence %d, plan %v: %s\ntrace:\n  %s", n, plan, fmt.Sprintf(format, args...), strings.Join(trace, "\n  "))
		}
		completed := 0
		for range maxCommands {
			at = at.Add(time.Duration(rng.IntN(6*60)) * time.Second)
			cmd := randomCommand(rng, s, at)
			before := s
			evs, err := operation.Decide(s, cmd)
			trace = append(trace, fmt.Sprintf("%s %T%+v -> %s err=%v", s.Status, cmd, cmd, show(evs), err))

			// Oracle: when must each command be accepted?
			var want bool
			switch c := cmd.(type) {
			case operation.CompleteStep:
				want = before.Status == operation.Running && before.CurrentStep() == c.Step
			case operation.FailStep:
				want = before.Status == operation.Running && before.CurrentStep() == c.Step
			case operation.ExpireStep:
				want = before.Status == operation.Running && before.CurrentStep() == c.Step &&
					!c.At.Before(before.Steps[before.Current].Deadline)
			case operation.Finish:
				want = !before.Terminal()
			}
			if (err == nil) != want {
				fail("%T accepted=%v, want %v (err %v)", cmd, err == nil, want, err)
			}
			if err != nil {
				if k := domain.KindOf(err); k != domain.Conflict {
					fail("refused with kind %d, want Conflict: %v", k, err)
				}
				continue
			}
			s = operation.Decider.Fold(s, evs)
			if msg := opInvariants(s); msg != "" {
				fail("%s: %+v", msg, s)
			}
			switch c := cmd.(type) {
			case operation.CompleteStep:
				completed++
				if (completed == len(plan)) != (s.Status == operation.Succeeded) {
					fail("%d of %d steps completed, status %s", completed, len(plan), s.Status)
				}
			case operation.ExpireStep:
				if s.Error != "step "+c.Step+" did not finish within "+before.Steps[before.Current].Timeout.String() {
					fail("expiry error %q", s.Error)
				}
			case operation.Finish:
				if s.Status != operation.Failed {
					fail("Finish accepted but the operation is %s", s.Status)
				}
				if before.Status == operation.Compensating && s.Error != before.Error {
					fail("Finish replaced the first error %q with %q", before.Error, s.Error)
				}
			}
		}

		// Whatever happened, Finish ends an operation that has not ended.
		if !s.Terminal() {
			evs, err := operation.Decide(s, operation.Finish{Reason: "gave up", At: at})
			if err != nil {
				fail("Finish refused on a %s operation: %v", s.Status, err)
			}
			ends["finished at the end ("+string(s.Status)+")"]++
			if s = operation.Decider.Fold(s, evs); !s.Terminal() || opInvariants(s) != "" {
				fail("not a proper end after Finish: %+v", s)
			}
		} else {
			ends[string(s.Status)]++
		}

		// After the end, nothing is accepted and nothing changes.
		for range 10 {
			at = at.Add(time.Hour)
			cmd := randomCommand(rng, s, at)
			if evs, err := operation.Decide(s, cmd); domain.KindOf(err) != domain.Conflict {
				fail("%T on a %s operation: %s, %v; want Conflict", cmd, s.Status, show(evs), err)
			}
		}
	}
	if ends[string(operation.Succeeded)] == 0 || ends[string(operation.Failed)] == 0 {
		t.Errorf("the walks did not reach both ends: %v", ends)
	}
	t.Logf("ends: %v", ends)
}

func TestOperationInvariantsRejectBrokenStates(t *testing.T) {
	good := fold(spawning)
	if msg := opInvariants(good); msg != "" {
		t.Fatalf("a healthy running operation fails the invariants: %s", msg)
	}
	for name, breakIt := range map[string]func(s *operation.State){
		"two running":          func(s *operation.State) { s.Steps[0].Status = operation.StepIsRunning },
		"current off":          func(s *operation.State) { s.Current = 0 },
		"succeeded, step runs": func(s *operation.State) { s.Status = operation.Succeeded },
		"failed, step runs":    func(s *operation.State) { s.Status, s.Error = operation.Failed, "x" },
		"bad deadline":         func(s *operation.State) { s.Steps[1].Deadline = s.Steps[1].Deadline.Add(time.Second) },
	} {
		s := good
		s.Steps = append([]operation.Step(nil), good.Steps...)
		breakIt(&s)
		if opInvariants(s) == "" {
			t.Errorf("%s: %+v passes the invariants", name, s)
		}
	}
}
