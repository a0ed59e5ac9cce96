// Package runner carries out saga workflows: it follows the event log
// through the eventlog.Subscriber port, decodes each commit, loads the state
// a workflow needs (the operation the event concerns and its server), asks
// the workflows that declared interest in the event what to do, and sends
// the commands they return with deterministic ids (<operation>/<what>), so a
// redelivered event is harmless.
//
// Workflows are pure: they see state and an event and return commands. The
// runner must not decide anything itself beyond routing and sending; what a
// refusal means is said by the command (Tolerate, IfRefused).
package runner

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/catalog"
	"github.com/keel-cloud/keel/domain/host"
	"github.com/keel-cloud/keel/domain/operation"
	"github.com/keel-cloud/keel/domain/project"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/domain/servergroup"
	"github.com/keel-cloud/keel/eventlog"
	"github.com/keel-cloud/keel/metrics"
)

// Event is one decoded event and the commit it came in.
type Event struct {
	AggregateType string
	AggregateID   string
	CorrelationID string
	Event         domain.Event
}

// State is what a workflow sees when it reacts: the operation the event
// concerns and the server that operation (or the event) is about, both as
// their own streams show them when the event is handled.
type State struct {
	Op     operation.State
	Server server.State
	Now    time.Time
}

// Command is one command a workflow asks the runner to send. Cmd is an
// operation, server, host or server group command (ID is then the
// aggregate id; a host's name for host commands), or an Effect.
type Command struct {
	ID  string
	Cmd any
	// Operation correlates the command; its id is Operation + "/" + What.
	Operation string
	What      string
	// Tolerate lists the refusals that end this command quietly.
	Tolerate []domain.ErrorKind
	// IfRefused is sent instead when the command is refused as a conflict
	// or not found (the aggregate moved on).
	IfRefused []Command
}

// Effect is a step the runner cannot send as one command: it calls the
// effect registered under Name with the operation id and Arg (what the
// operation alone does not name, such as the port a detach unplugged).
type Effect struct{ Name, Arg string }

// EffectFunc carries out an effect for operation opID.
type EffectFunc func(ctx context.Context, opID, arg string) error

// Workflow is one kind of multi-step operation.
type Workflow struct {
	Name string
	// Kinds are the operation kinds this workflow owns: their operation
	// events come to it.
	Kinds []string
	// Events are the event types (of other aggregates) it reacts to.
	Events []string
	// Operation names the operation an event of Events concerns ("" when none).
	Operation func(Event) string
	// React is pure: the commands to send for an event in a state.
	React func(State, Event) []Command
}

// Runner routes events to workflows and sends their commands.
type Runner struct {
	App       *commands.App
	Workflows []Workflow
	// Effects are the effectful steps workflows may ask for, by name.
	Effects map[string]EffectFunc
	Log     *slog.Logger
	Now     func() time.Time
	// Metrics counts ended operations and their durations (nil: not counted).
	Metrics *metrics.Set
}

// Subscribe follows the given aggregate types (operation among them, for
// the workflows' Kinds) under a durable name until ctx ends. Workers are keyed by correlation (the operation), so the events
// of one operation are handled in order.
func (r *Runner) Subscribe(ctx context.Context, events eventlog.Subscriber, durable string, types ...string) error {
	sub := eventlog.Subscription{
		Name:           durable,
		AggregateTypes: types,
		Workers:        32,
		Key: func(env domain.Envelope) string {
			if env.CorrelationID != "" {
				return env.CorrelationID
			}
			return env.AggregateID
		},
		Handle: r.Handle,
		Log:    r.Log,
	}
	return events.Subscribe(ctx, sub)
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Handle reacts to one commit, event by event, each on freshly loaded state.
func (r *Runner) Handle(ctx context.Context, env domain.Envelope) error {
	events, err := catalog.Decode(env)
	if err != nil {
		return err
	}
	for _, ev := range events {
		e := Event{AggregateType: env.AggregateType, AggregateID: env.AggregateID, CorrelationID: env.CorrelationID, Event: ev}
		if err := r.react(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

func (r *Runner) react(ctx context.Context, e Event) error {
	if e.AggregateType == operation.AggregateType {
		return r.onOperation(ctx, e)
	}
	for _, w := range r.Workflows {
		if !slices.Contains(w.Events, e.Event.EventType()) {
			continue
		}
		st, err := r.load(ctx, w.Operation(e), e.AggregateID)
		if err != nil {
			return err
		}
		if err := r.Send(ctx, w.React(st, e)); err != nil {
			return err
		}
	}
	return nil
}

// onOperation hands an operation event to the workflow owning its kind.
func (r *Runner) onOperation(ctx context.Context, e Event) error {
	op, _, err := r.App.Operations.Load(ctx, e.AggregateID)
	if err != nil {
		return err
	}
	r.ended(op, e.Event)
	for _, w := range r.Workflows {
		if !slices.Contains(w.Kinds, op.Kind) {
			continue
		}
		st, err := r.load(ctx, e.AggregateID, op.ResourceID)
		if err != nil {
			return err
		}
		if err := r.Send(ctx, w.React(st, e)); err != nil {
			return err
		}
	}
	return nil
}

// load reads an operation and a server from their streams ("" reads nothing).
func (r *Runner) load(ctx context.Context, opID, serverID string) (State, error) {
	st := State{Now: r.now().UTC()}
	var err error
	if opID != "" {
		if st.Op, _, err = r.App.Operations.Load(ctx, opID); err != nil {
			return st, err
		}
	}
	if serverID != "" {
		if st.Server, _, err = r.App.Servers.Load(ctx, serverID); err != nil {
			return st, err
		}
	}
	return st, nil
}

// ended records an operation's outcome and duration. Every operation's end
// passes here, whoever ended it (a step, a deadline, compensation); a
// redelivered commit may count twice, which metrics tolerate.
func (r *Runner) ended(op operation.State, ev domain.Event) {
	if r.Metrics == nil {
		return
	}
	switch e := ev.(type) {
	case *operation.OperationSucceeded:
		r.Metrics.OperationEnded(op.Kind, string(operation.Succeeded), e.At.Sub(op.StartedAt))
	case *operation.OperationFailed:
		r.Metrics.OperationEnded(op.Kind, string(operation.Failed), e.At.Sub(op.StartedAt))
	}
}

// Send sends commands in order; it stops at the first error that is not a
// tolerated refusal.
func (r *Runner) Send(ctx context.Context, cmds []Command) error {
	for _, c := range cmds {
		err := r.send(ctx, c)
		k := domain.KindOf(err)
		switch {
		case err == nil:
		case len(c.IfRefused) > 0 && (k == domain.Conflict || k == domain.NotFound):
			err = r.Send(ctx, c.IfRefused)
		case k != 0 && slices.Contains(c.Tolerate, k):
			r.Log.Debug("saga step no longer applies", "operation", c.Operation, "what", c.What, "why", err)
			err = nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (r *Runner) send(ctx context.Context, c Command) error {
	meta := commands.Meta{CommandID: c.Operation + "/" + c.What, Actor: domain.Actor{User: "saga"}, CorrelationID: c.Operation}
	var err error
	switch cmd := c.Cmd.(type) {
	case operation.Command:
		_, err = r.App.Operations.Handle(ctx, c.ID, cmd, meta)
	case server.Command:
		_, err = r.App.Servers.Handle(ctx, c.ID, cmd, meta)
	case host.Command:
		_, err = r.App.Hosts.Handle(ctx, commands.HostID(c.ID), cmd, meta)
	case servergroup.Command:
		_, err = r.App.Groups.Handle(ctx, c.ID, cmd, meta)
	case project.Command:
		_, err = r.App.Projects.HandleBatched(ctx, c.ID, cmd, meta)
	case Effect:
		fn, ok := r.Effects[cmd.Name]
		if !ok {
			return fmt.Errorf("saga: no effect %q", cmd.Name)
		}
		err = fn(ctx, c.Operation, cmd.Arg)
	default:
		return fmt.Errorf("saga: cannot send %T", c.Cmd)
	}
	return err
}
