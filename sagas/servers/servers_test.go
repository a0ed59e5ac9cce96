package servers

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/operation"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/sagas/runner"
)

var (
	t0       = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	timeouts = Timeouts{Network: 20 * time.Second, Schedule: 30 * time.Second, Spawn: 2 * time.Minute, Action: time.Minute, Destroy: time.Minute}
)

const (
	opID = "op-1"
	sid  = "srv-1"
)

// given is the state a reaction sees.
type given struct {
	op     operation.State
	server server.State
}

// noOperation: the event's operation has not begun.
var noOperation = operation.State{Current: -1}

// running is an operation of kind at step (its steps in order), after retries rewinds.
func running(kind, step string, retries int, steps ...string) operation.State {
	s := operation.State{ID: opID, Exists: true, Kind: kind, ResourceType: server.AggregateType, ResourceID: sid,
		Status: operation.Running, Current: -1, Retries: retries, StartedAt: t0}
	for i, n := range steps {
		st := operation.Step{Name: n, Status: operation.StepIsPending}
		if n == step {
			st.Status, s.Current = operation.StepIsRunning, i
		}
		s.Steps = append(s.Steps, st)
	}
	return s
}

func compensating(kind string, steps ...string) operation.State {
	s := running(kind, "", 0, steps...)
	s.Status = operation.Compensating
	return s
}

func ended(kind string, steps ...string) operation.State {
	s := running(kind, "", 0, steps...)
	s.Status = operation.Failed
	return s
}

// onServer is a server that the operation opID (or another) works on.
func onServer(op string, group string) server.State {
	return server.State{ID: sid, Exists: true, Operation: op, Status: server.StatusActive, Hints: server.Hints{ServerGroup: group}}
}

func deleting(op string) server.State {
	s := onServer(op, "")
	s.Desired = server.WantDeleted
	return s
}

// fromServer is a server event in a commit correlated to opID.
func fromServer(ev domain.Event) runner.Event {
	return runner.Event{AggregateType: server.AggregateType, AggregateID: sid, CorrelationID: opID, Event: ev}
}

func fromOperation(ev domain.Event) runner.Event {
	return runner.Event{AggregateType: operation.AggregateType, AggregateID: opID, CorrelationID: opID, Event: ev}
}

// scenario: given state, when an event, then commands (as show renders them).
type scenario struct {
	name string
	given
	when runner.Event
	then []string
}

// run routes each scenario's event as the runner does (by event type, or by
// the operation's kind) and compares the commands.
func run(t *testing.T, scenarios []scenario) {
	t.Helper()
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			w := route(t, sc.when, sc.op)
			if sc.when.AggregateType == server.AggregateType && w.Operation(sc.when) != "" && sc.op.Exists && string(sc.op.ID) != w.Operation(sc.when) {
				t.Fatalf("scenario gives operation %s, the event concerns %s", sc.op.ID, w.Operation(sc.when))
			}
			got := show(w.React(stateOf(sc.given), sc.when))
			if !slices.Equal(got, sc.then) {
				t.Fatalf("\ngot  %q\nwant %q", got, sc.then)
			}
		})
	}
}

// route finds the one workflow an event goes to.
func route(t *testing.T, e runner.Event, op operation.State) runner.Workflow {
	var found []runner.Workflow
	for _, w := range Workflows(timeouts) {
		if (e.AggregateType == operation.AggregateType && slices.Contains(w.Kinds, op.Kind)) ||
			(e.AggregateType != operation.AggregateType && slices.Contains(w.Events, e.Event.EventType())) {
			found = append(found, w)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s goes to %d workflows", e.Event.EventType(), len(found))
	}
	return found[0]
}

// show renders commands as "<command type> <aggregate id> <command id>",
// with what is sent when refused in braces.
func show(cs []runner.Command) []string {
	var out []string
	for _, c := range cs {
		s := fmt.Sprintf("%T %s %s/%s", c.Cmd, c.ID, c.Operation, c.What)
		if e, ok := c.Cmd.(runner.Effect); ok {
			s = fmt.Sprintf("effect %s %s", e.Name, c.Operation)
		}
		if len(c.IfRefused) > 0 {
			s += " {else " + strings.Join(show(c.IfRefused), "; ") + "}"
		}
		out = append(out, s)
	}
	return out
}

// Every event type and every operation kind goes to exactly one workflow.
func TestWorkflowsDoNotOverlap(t *testing.T) {
	events, kinds := map[string]string{}, map[string]string{}
	for _, w := range Workflows(timeouts) {
		for _, e := range w.Events {
			if other, ok := events[e]; ok {
				t.Errorf("%s reacts to %s, like %s", w.Name, e, other)
			}
			events[e] = w.Name
		}
		for _, k := range w.Kinds {
			if other, ok := kinds[k]; ok {
				t.Errorf("%s owns %s, like %s", w.Name, k, other)
			}
			kinds[k] = w.Name
		}
	}
}

// A Begin carries the workflow's steps and their timeouts.
func TestBeginCarriesSteps(t *testing.T) {
	cs := reactCreate(timeouts, runner.State{Op: noOperation, Now: t0}, fromServer(&server.Created{Operation: opID}))
	b := cs[0].Cmd.(operation.Begin)
	want := []operation.StepSpec{{Name: StepSchedule, Timeout: 30 * time.Second}, {Name: StepSpawn, Timeout: 2 * time.Minute}}
	if b.Kind != KindCreate || b.ResourceID != sid || !slices.Equal(b.Steps, want) || !b.At.Equal(t0) {
		t.Fatalf("begin: %+v", b)
	}
	if !slices.Equal(cs[0].Tolerate, []domain.ErrorKind{domain.Conflict, domain.NotFound}) {
		t.Fatalf("a begun operation must refuse a second begin quietly: %v", cs[0].Tolerate)
	}
}

func stateOf(g given) runner.State { return runner.State{Op: g.op, Server: g.server, Now: t0} }
