package runner_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/operation"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/eventlog/memlog"
	"github.com/keel-cloud/keel/sagas/runner"
)

func newRunner(effects map[string]runner.EffectFunc) (*runner.Runner, *memlog.Log) {
	log := memlog.New()
	return &runner.Runner{App: commands.NewApp(log), Effects: effects, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, log
}

func begin(id string) runner.Command {
	return runner.Command{ID: id, Operation: id, What: "begin", Tolerate: []domain.ErrorKind{domain.Conflict},
		Cmd: operation.Begin{ID: operation.ID(id), Kind: "test", Steps: []operation.StepSpec{{Name: "a", Timeout: time.Minute}}, At: time.Now()}}
}

// Commands land with the id <operation>/<what>; a repeat is a duplicate, a
// tolerated refusal is quiet, an untolerated one is an error.
func TestSendIdsAndRefusals(t *testing.T) {
	ctx := context.Background()
	r, log := newRunner(nil)
	if err := r.Send(ctx, []runner.Command{begin("op-1"), begin("op-1")}); err != nil {
		t.Fatal(err)
	}
	envs, _ := log.Load(ctx, operation.AggregateType, "op-1", 0)
	if len(envs) != 1 || envs[0].CommandID != "op-1/begin" || envs[0].CorrelationID != "op-1" {
		t.Fatalf("commits: %+v", envs)
	}
	again := begin("op-1")
	again.What = "begin-again" // a new id: the operation refuses it as a conflict
	if err := r.Send(ctx, []runner.Command{again}); err != nil {
		t.Fatalf("tolerated refusal: %v", err)
	}
	again.Tolerate = nil
	if err := r.Send(ctx, []runner.Command{again}); domain.KindOf(err) != domain.Conflict {
		t.Fatalf("untolerated refusal: %v", err)
	}
}

// A command refused because its aggregate moved on sends its IfRefused instead.
func TestSendIfRefused(t *testing.T) {
	ctx := context.Background()
	r, _ := newRunner(nil)
	abort := runner.Command{ID: "no-such-server", Cmd: server.AbortTask{Reason: "late"}, Operation: "op-1", What: "compensate",
		IfRefused: []runner.Command{begin("op-1")}}
	if err := r.Send(ctx, []runner.Command{abort}); err != nil {
		t.Fatal(err)
	}
	if st, _, _ := r.App.Operations.Load(ctx, "op-1"); !st.Exists {
		t.Fatal("the fallback was not sent")
	}
}

// An operation event goes to the workflow owning its kind; an effect is
// called with the operation id and its argument.
func TestRouteByKindToAnEffect(t *testing.T) {
	ctx := context.Background()
	var called []string
	r, log := newRunner(map[string]runner.EffectFunc{
		"go": func(_ context.Context, op, arg string) error { called = append(called, op+arg); return nil }})
	r.Workflows = []runner.Workflow{{Name: "other", Kinds: []string{"other"}, React: func(runner.State, runner.Event) []runner.Command {
		t.Error("routed to the wrong workflow")
		return nil
	}}, {Name: "test", Kinds: []string{"test"}, React: func(s runner.State, e runner.Event) []runner.Command {
		if _, ok := e.Event.(*operation.StepStarted); ok && s.Op.CurrentStep() == "a" {
			return []runner.Command{{Cmd: runner.Effect{Name: "go", Arg: "/arg"}, Operation: e.AggregateID}}
		}
		return nil
	}}}
	if err := r.Send(ctx, []runner.Command{begin("op-1")}); err != nil {
		t.Fatal(err)
	}
	envs, _ := log.Load(ctx, operation.AggregateType, "op-1", 0)
	if err := r.Handle(ctx, envs[0]); err != nil {
		t.Fatal(err)
	}
	if len(called) != 1 || called[0] != "op-1/arg" {
		t.Fatalf("effect calls: %v", called)
	}
}
