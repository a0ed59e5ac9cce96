// Package sagas drives multi-step operations. The server saga follows server
// and operation events and issues the next command of each operation: it
// begins the operation, places the server, waits for the host's report,
// and on a failed or overdue step compensates the completed steps in
// reverse order, so that every operation ends succeeded or failed.
//
// Its state is the operation aggregate itself, so it survives restarts; the
// commands it sends have deterministic ids (<operation>/<step>/<what>), so a
// redelivered event is harmless. It must not touch hosts directly.
package sagas

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/catalog"
	"github.com/keel-cloud/keel/domain/operation"
	"github.com/keel-cloud/keel/domain/scheduler"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/eventlog"
	"github.com/keel-cloud/keel/metrics"
)

// Durable is the server saga's subscription name: renaming it re-consumes
// the log.
const Durable = "saga-servers-v1"

// Operation kinds and their steps.
const (
	KindCreate = "server.create"
	KindStart  = "server.start"
	KindStop   = "server.stop"
	KindReboot = "server.reboot"
	KindDelete = "server.delete"

	StepSchedule = "schedule"
	StepSpawn    = "spawn"
	StepPowerOn  = "power_on"
	StepPowerOff = "power_off"
	StepReboot   = "reboot"
	StepDestroy  = "destroy"
)

// Timeouts bound each step.
type Timeouts struct {
	Schedule time.Duration
	Spawn    time.Duration
	Action   time.Duration
	Destroy  time.Duration
}

// DefaultTimeouts are the step deadlines used unless configured.
var DefaultTimeouts = Timeouts{Schedule: 30 * time.Second, Spawn: 120 * time.Second, Action: 60 * time.Second, Destroy: 60 * time.Second}

// ServerSaga is the process manager of server operations.
type ServerSaga struct {
	App      *commands.App
	Snapshot Snapshot
	Weights  scheduler.Weights
	Timeouts Timeouts
	Log      *slog.Logger
	Now      func() time.Time
	// CatchUp, when set, waits (within a bound) until the read model has
	// applied every commit in the log; placement calls it before it says
	// "no valid host" on a snapshot that may be behind.
	CatchUp func(ctx context.Context) error
	// Metrics counts ended operations and their durations (nil: not counted).
	Metrics *metrics.Set

	groupLocks sync.Map // server group id -> *sync.Mutex
}

// Run follows server and operation commits until ctx ends.
func (s *ServerSaga) Run(ctx context.Context, events eventlog.Subscriber) error {
	sub := eventlog.Subscription{
		Name:           Durable,
		AggregateTypes: []string{server.AggregateType, operation.AggregateType},
		Workers:        32,
		Key: func(env domain.Envelope) string {
			if env.CorrelationID != "" {
				return env.CorrelationID
			}
			return env.AggregateID
		},
		Handle: s.Handle,
		Log:    s.Log,
	}
	return events.Subscribe(ctx, sub)
}

func (s *ServerSaga) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Handle reacts to one commit.
func (s *ServerSaga) Handle(ctx context.Context, env domain.Envelope) error {
	events, err := catalog.Decode(env)
	if err != nil {
		return err
	}
	for _, ev := range events {
		var err error
		switch env.AggregateType {
		case server.AggregateType:
			err = s.onServer(ctx, env, ev)
		case operation.AggregateType:
			err = s.onOperation(ctx, env, ev)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *ServerSaga) onServer(ctx context.Context, env domain.Envelope, ev domain.Event) error {
	sid, op := env.AggregateID, env.CorrelationID
	switch e := ev.(type) {
	case *server.Created:
		return s.begin(ctx, e.Operation, KindCreate, sid,
			operation.StepSpec{Name: StepSchedule, Timeout: s.Timeouts.Schedule},
			operation.StepSpec{Name: StepSpawn, Timeout: s.Timeouts.Spawn})
	case *server.StartRequested:
		return s.begin(ctx, e.Operation, KindStart, sid, operation.StepSpec{Name: StepPowerOn, Timeout: s.Timeouts.Action})
	case *server.StopRequested:
		return s.begin(ctx, e.Operation, KindStop, sid, operation.StepSpec{Name: StepPowerOff, Timeout: s.Timeouts.Action})
	case *server.RebootRequested:
		return s.begin(ctx, e.Operation, KindReboot, sid, operation.StepSpec{Name: StepReboot, Timeout: s.Timeouts.Action})
	case *server.DeleteRequested:
		if e.Superseded != "" {
			reason := fmt.Sprintf("superseded by delete (operation %s)", e.Operation)
			if err := s.op(ctx, e.Superseded, "superseded", operation.Finish{Reason: reason, At: s.now().UTC()}); err != nil {
				return err
			}
		}
		return s.begin(ctx, e.Operation, KindDelete, sid, operation.StepSpec{Name: StepDestroy, Timeout: s.Timeouts.Destroy})
	case *server.Scheduled:
		return s.completeOrFinish(ctx, e.Operation, StepSchedule, "")
	case *server.Spawned:
		return s.completeOrFinish(ctx, op, StepSpawn, "")
	case *server.Started:
		return s.completeOrFinish(ctx, op, StepPowerOn, "")
	case *server.Stopped:
		return s.completeOrFinish(ctx, op, StepPowerOff, "")
	case *server.Rebooted:
		return s.completeOrFinish(ctx, op, StepReboot, "")
	case *server.SpawnFailed:
		if err := s.release(ctx, op, e.Host, sid, "spawn failed: "+e.Reason); err != nil {
			return err
		}
		reason := fmt.Sprintf("spawn on %s failed (%s); trying another host", e.Host, e.Reason)
		return s.op(ctx, op, fmt.Sprintf("rewind/%d", e.Attempt), operation.Rewind{From: StepSpawn, To: StepSchedule, Reason: reason, At: s.now().UTC()})
	case *server.Failed:
		if err := s.release(ctx, e.Operation, e.Host, sid, "build failed"); err != nil {
			return err
		}
		if err := s.leave(ctx, e.Operation, sid); err != nil {
			return err
		}
		return s.finish(ctx, e.Operation, e.Reason, compensatedCreate(e.Host))
	case *server.ActionFailed:
		return s.finish(ctx, op, e.Reason, nil)
	case *server.Deleted:
		if err := s.release(ctx, op, e.Host, sid, "server deleted"); err != nil {
			return err
		}
		if err := s.leave(ctx, op, sid); err != nil {
			return err
		}
		if e.Forced {
			return s.finish(ctx, op, e.Reason, nil)
		}
		return s.completeOrFinish(ctx, op, StepDestroy, "")
	}
	return nil
}

func (s *ServerSaga) onOperation(ctx context.Context, env domain.Envelope, ev domain.Event) error {
	opID := env.AggregateID
	switch e := ev.(type) {
	case *operation.StepStarted:
		if e.Step == StepSchedule {
			return s.schedule(ctx, opID)
		}
	case *operation.StepFailed:
		return s.compensate(ctx, opID, e.Step, e.Reason)
	case *operation.OperationSucceeded:
		s.ended(ctx, opID, operation.Succeeded, e.At)
	case *operation.OperationFailed:
		s.ended(ctx, opID, operation.Failed, e.At)
	}
	return nil
}

// ended records an operation's outcome and duration. Every operation's end
// passes here, whoever ended it (a step, a deadline, compensation); a
// redelivered commit may count twice, which metrics tolerate.
func (s *ServerSaga) ended(ctx context.Context, opID string, outcome operation.Status, at time.Time) {
	if s.Metrics == nil {
		return
	}
	st, _, err := s.App.Operations.Load(ctx, opID)
	if err != nil {
		s.Log.Debug("operation metrics", "operation", opID, "err", err)
		return
	}
	s.Metrics.OperationEnded(st.Kind, string(outcome), at.Sub(st.StartedAt))
}

// begin starts an operation; it is a no-op when it already began. Saga
// workers are keyed by operation, so a delete may have superseded this
// operation before it began: then it ends at once instead of waiting for a
// deadline.
func (s *ServerSaga) begin(ctx context.Context, opID, kind, sid string, steps ...operation.StepSpec) error {
	err := s.op(ctx, opID, "begin", operation.Begin{ID: operation.ID(opID), Kind: kind,
		ResourceType: server.AggregateType, ResourceID: sid, Steps: steps, At: s.now().UTC()})
	if err != nil {
		return err
	}
	sv, _, err := s.App.Servers.Load(ctx, sid)
	if err != nil {
		return err
	}
	if sv.Operation != opID {
		reason := fmt.Sprintf("superseded by operation %s (server is %s)", sv.Operation, sv.Status)
		if sv.Desired == server.WantDeleted {
			reason = fmt.Sprintf("superseded by delete (operation %s)", sv.Operation)
		}
		return s.finish(ctx, opID, reason, nil)
	}
	return nil
}

// compensate undoes what a failed operation did, through the server.
func (s *ServerSaga) compensate(ctx context.Context, opID, step, reason string) error {
	st, _, err := s.App.Operations.Load(ctx, opID)
	if err != nil {
		return err
	}
	if st.Terminal() {
		return nil
	}
	sid, at := st.ResourceID, s.now().UTC()
	var cmd server.Command
	switch st.Kind {
	case KindCreate:
		cmd = server.Fail{Reason: reason, Operation: opID, At: at}
	case KindStart, KindStop, KindReboot:
		cmd = server.AbortTask{Reason: reason, At: at}
	case KindDelete:
		cmd = server.ForceDelete{Reason: "host did not confirm the delete (" + reason + "); removed from the control plane", At: at}
	default:
		return s.finish(ctx, opID, reason, nil)
	}
	err = s.server(ctx, sid, opID, "compensate", cmd)
	if k := domain.KindOf(err); k == domain.Conflict || k == domain.NotFound {
		// The server moved on (deleted, superseded): nothing left to undo.
		return s.finish(ctx, opID, reason, nil)
	}
	return err
}

// completeOrFinish completes a step of a running operation; when the
// operation is compensating instead, the event is the end of compensation.
func (s *ServerSaga) completeOrFinish(ctx context.Context, opID, step, reason string) error {
	if opID == "" {
		return nil
	}
	st, _, err := s.App.Operations.Load(ctx, opID)
	if err != nil || st.Terminal() || !st.Exists {
		return err
	}
	if st.Status == operation.Running && st.CurrentStep() == step {
		// Steps can run again after a rewind: the attempt keeps ids apart.
		return s.op(ctx, opID, fmt.Sprintf("%s/done/%d", step, st.Retries), operation.CompleteStep{Step: step, At: s.now().UTC()})
	}
	if st.Status == operation.Compensating {
		return s.finish(ctx, opID, reason, nil)
	}
	return nil
}

func (s *ServerSaga) finish(ctx context.Context, opID, reason string, compensated []string) error {
	if opID == "" {
		return nil
	}
	return s.op(ctx, opID, "finish", operation.Finish{Reason: reason, Compensated: compensated, At: s.now().UTC()})
}

func compensatedCreate(host string) []string {
	if host != "" {
		return []string{StepSpawn, StepSchedule}
	}
	return nil
}

// op sends a command to an operation; refusals mean the operation moved on.
func (s *ServerSaga) op(ctx context.Context, opID, what string, cmd operation.Command) error {
	meta := commands.Meta{CommandID: opID + "/" + what, Actor: domain.Actor{User: "saga"}, CorrelationID: opID}
	_, err := s.App.Operations.Handle(ctx, opID, cmd, meta)
	return ignoreRefusal(s.Log, err, opID, what)
}

func (s *ServerSaga) server(ctx context.Context, sid, opID, what string, cmd server.Command) error {
	meta := commands.Meta{CommandID: opID + "/" + what, Actor: domain.Actor{User: "saga"}, CorrelationID: opID}
	_, err := s.App.Servers.Handle(ctx, sid, cmd, meta)
	return err
}

func ignoreRefusal(log *slog.Logger, err error, opID, what string) error {
	if k := domain.KindOf(err); k == domain.Conflict || k == domain.NotFound {
		log.Debug("saga step no longer applies", "operation", opID, "what", what, "why", err)
		return nil
	}
	return err
}
