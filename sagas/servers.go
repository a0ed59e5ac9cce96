// Package sagas composes Keel's sagas: the runner (sagas/runner) carrying
// out the pure server workflows (sagas/servers) and the placement effect
// they call for. The reconcilers beside them (deadlines, orphaned claims,
// host liveness), which are not sagas, are in sagas/monitors.
//
// A saga's state is the operation aggregate itself, so it survives restarts;
// the commands it sends have deterministic ids (<operation>/<step>/<what>),
// so a redelivered event is harmless. It must not touch hosts directly.
package sagas

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/operation"
	"github.com/keel-cloud/keel/domain/scheduler"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/eventlog"
	"github.com/keel-cloud/keel/metrics"
	"github.com/keel-cloud/keel/sagas/runner"
	"github.com/keel-cloud/keel/sagas/servers"
)

// Durable is the server saga's subscription name: renaming it re-consumes
// the log.
const Durable = "saga-servers-v1"

// Operation kinds and their steps (see sagas/servers).
const (
	KindCreate = servers.KindCreate
	KindStart  = servers.KindStart
	KindStop   = servers.KindStop
	KindReboot = servers.KindReboot
	KindDelete = servers.KindDelete

	StepSchedule = servers.StepSchedule
	StepSpawn    = servers.StepSpawn
	StepPowerOn  = servers.StepPowerOn
	StepPowerOff = servers.StepPowerOff
	StepReboot   = servers.StepReboot
	StepDestroy  = servers.StepDestroy
)

// Timeouts bound each step.
type Timeouts = servers.Timeouts

// DefaultTimeouts are the step deadlines used unless configured.
var DefaultTimeouts = Timeouts{Network: 30 * time.Second, Schedule: 30 * time.Second, Spawn: 120 * time.Second, Action: 60 * time.Second, Destroy: 60 * time.Second}

// ServerSaga runs the server workflows and their placement effect, and
// holds what the reconcilers beside them need.
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
	// FloatingIPsOf, when set, names the floating IPs associated with a port
	// (from the read model): when the saga deletes a server's port it
	// disassociates them at once, as the API does for a port it deletes
	// (the floating IP sweep is the backstop for what the read model had
	// not shown yet).
	FloatingIPsOf func(ctx context.Context, portID string) ([]string, error)

	groupLocks sync.Map // server group id -> *sync.Mutex
	once       sync.Once
	run        *runner.Runner
}

// Runner returns the runner carrying out the server workflows; it is
// built on first use from the saga's fields.
func (s *ServerSaga) Runner() *runner.Runner {
	s.once.Do(func() {
		s.run = &runner.Runner{App: s.App, Workflows: servers.Workflows(s.Timeouts), Log: s.Log, Now: s.Now, Metrics: s.Metrics,
			Effects: map[string]runner.EffectFunc{servers.EffectPlace: noArg(s.schedule),
				servers.EffectPorts: noArg(s.ports), servers.EffectReleasePorts: noArg(s.releasePorts),
				servers.EffectInterfacePort: noArg(s.interfacePort), servers.EffectReleaseInterfacePort: noArg(s.releaseInterfacePort),
				servers.EffectDeletePort: s.deleteNICPort}}
	})
	return s.run
}

// noArg is an effect that needs nothing but its operation.
func noArg(fn func(context.Context, string) error) runner.EffectFunc {
	return func(ctx context.Context, opID, _ string) error { return fn(ctx, opID) }
}

// Run follows server and operation commits until ctx ends.
func (s *ServerSaga) Run(ctx context.Context, events eventlog.Subscriber) error {
	return s.Runner().Subscribe(ctx, events, Durable, server.AggregateType, operation.AggregateType)
}

func (s *ServerSaga) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Handle reacts to one commit.
func (s *ServerSaga) Handle(ctx context.Context, env domain.Envelope) error {
	return s.Runner().Handle(ctx, env)
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
