package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/host"
	"github.com/keel-cloud/keel/domain/operation"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/sagas"
)

// gen writes realistic commits through the real command handlers (deciders
// and optimistic appends), without running the saga: the commits a saga
// and a host agent would have produced are issued here directly, in the
// same order and with the same command ids.
type gen struct {
	app     *commands.App
	tag     string // keeps ids of different runs apart
	hosts   int
	commits atomic.Int64
}

// step is one command that produces exactly one commit.
type step func(ctx context.Context) (uint64, error)

var benchFlavor = server.Flavor{ID: "8f9a3c1e-0b7d-4d2a-9c51-3e6f0a7b2d10", Name: "small", VCPUs: 1, RAMMiB: 512, DiskGiB: 1}

const benchImage = "2c4e6a80-1b3d-4f5a-8c7e-9d0f1a2b3c4d"

func (g *gen) serverID(i int) string { return commands.DeriveID("keelbench", g.tag, strconv.Itoa(i)) }

func (g *gen) host(i int) string { return fmt.Sprintf("sim-%d", i%g.hosts+1) }

func (g *gen) srv(id, op, what string, cmd server.Command) step {
	return func(ctx context.Context) (uint64, error) {
		meta := commands.Meta{CommandID: op + "/" + what, Actor: domain.Actor{User: "keelbench"}, CorrelationID: op}
		r, err := g.app.Servers.Handle(ctx, id, cmd, meta)
		return g.count(r.Seq, r.Duplicate, err, "server "+id+" "+what)
	}
}

func (g *gen) op(op, what string, cmd operation.Command) step {
	return func(ctx context.Context) (uint64, error) {
		meta := commands.Meta{CommandID: op + "/" + what, Actor: domain.Actor{User: "saga"}, CorrelationID: op}
		r, err := g.app.Operations.Handle(ctx, op, cmd, meta)
		return g.count(r.Seq, r.Duplicate, err, "operation "+op+" "+what)
	}
}

func (g *gen) count(seq uint64, dup bool, err error, what string) (uint64, error) {
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	if dup {
		return 0, fmt.Errorf("%s: unexpected duplicate", what)
	}
	g.commits.Add(1)
	return seq, nil
}

// buildSteps are the server's own commits of a build: created, scheduled
// and spawned (what the Servers projection applies).
func (g *gen) buildSteps(i int) []step {
	id, op, h, now := g.serverID(i), commands.DeriveID(g.serverID(i), "create"), g.host(i), time.Now().UTC()
	return []step{
		g.srv(id, op, "create", server.Create{ID: server.ID(id), Name: "bench-" + strconv.Itoa(i), Flavor: benchFlavor,
			ImageID: benchImage, Operation: op, At: now}),
		g.srv(id, op, "schedule", server.Schedule{Host: h, Operation: op, At: now}),
		g.srv(id, op, "spawned", server.Report{Host: h, Kind: server.ReportSpawned, At: now}),
	}
}

// lifecycle returns every commit of one server's life as the saga, the
// scheduler's host claims and the host agent write them: a build (5% fail
// on the first host and are retried on another), then with some chance a
// stop and a start, a reboot, and a delete. It averages about 11 commits
// per server. The hosts must have been registered (registerHosts).
func (g *gen) lifecycle(i int) []step {
	rng := rand.New(rand.NewPCG(uint64(i), 0x6b65656c))
	id, h, now := g.serverID(i), g.host(i), time.Now().UTC()
	op := commands.DeriveID(id, "create")
	b := g.buildSteps(i)
	out := []step{b[0], g.op(op, "begin", operation.Begin{ID: operation.ID(op), Kind: sagas.KindCreate,
		ResourceType: server.AggregateType, ResourceID: id, At: now, Steps: []operation.StepSpec{
			{Name: sagas.StepSchedule, Timeout: 30 * time.Second}, {Name: sagas.StepSpawn, Timeout: 2 * time.Minute}}})}
	place := func(attempt int, h string) []step {
		return []step{g.claim(op, attempt, h, id), g.srv(id, op, "schedule/"+strconv.Itoa(attempt), server.Schedule{Host: h, Operation: op, At: now}),
			g.op(op, sagas.StepSchedule+"/done/"+strconv.Itoa(attempt), operation.CompleteStep{Step: sagas.StepSchedule, At: now})}
	}
	out = append(out, place(0, h)...)
	if rng.Float64() < 0.05 {
		out = append(out, g.srv(id, op, "spawn-failed", server.Report{Host: h, Kind: server.ReportSpawnFailed, Reason: "no space left on device", At: now}),
			g.release(op, h, id),
			g.op(op, "rewind/1", operation.Rewind{From: sagas.StepSpawn, To: sagas.StepSchedule, Reason: "spawn failed; trying another host", At: now}))
		h = g.host(i + 1)
		out = append(out, place(1, h)...)
	}
	out = append(out, g.srv(id, op, "spawned", server.Report{Host: h, Kind: server.ReportSpawned, At: now}),
		g.op(op, sagas.StepSpawn+"/done", operation.CompleteStep{Step: sagas.StepSpawn, At: now}))
	if rng.Float64() < 0.3 {
		out = append(out, g.action(id, h, "stop", server.Stop{}, sagas.StepPowerOff, server.ReportStopped)...)
		out = append(out, g.action(id, h, "start", server.Start{}, sagas.StepPowerOn, server.ReportStarted)...)
	}
	if rng.Float64() < 0.2 {
		out = append(out, g.action(id, h, "reboot", server.Reboot{}, sagas.StepReboot, server.ReportRebooted)...)
	}
	if rng.Float64() < 0.3 {
		del := g.action(id, h, "delete", server.Delete{}, sagas.StepDestroy, server.ReportDestroyed)
		out = append(append(out, del[:3]...), g.release(commands.DeriveID(id, "delete"), h, id), del[3])
	}
	return out
}

// registerHosts registers the simulated hosts the lifecycles claim on.
func (g *gen) registerHosts(ctx context.Context) error {
	for i := range g.hosts {
		name := g.host(i)
		spec := host.Spec{Name: name, Driver: "fake", VCPUs: 1 << 20, RAMMiB: 1 << 30, DiskGiB: 1 << 30}
		meta := commands.Meta{CommandID: "register/" + name, Actor: domain.Actor{User: "agent"}}
		r, err := g.app.Hosts.Handle(ctx, commands.HostID(name), host.Register{ID: commands.HostID(name), Spec: spec, At: time.Now().UTC()}, meta)
		if _, err := g.count(r.Seq, r.Duplicate, err, "register host "+name); err != nil {
			return err
		}
	}
	return nil
}

func (g *gen) claim(op string, attempt int, h, serverID string) step {
	return g.hostCmd(h, op+"/claim/"+strconv.Itoa(attempt)+"/"+h, op, host.Claim{Server: serverID,
		Resources: host.Resources{VCPUs: benchFlavor.VCPUs, RAMMiB: benchFlavor.RAMMiB, DiskGiB: benchFlavor.DiskGiB},
		Operation: op, At: time.Now().UTC()})
}

func (g *gen) release(op, h, serverID string) step {
	return g.hostCmd(h, op+"/release/"+h+"/"+serverID, op, host.Release{Server: serverID, Reason: "released", At: time.Now().UTC()})
}

func (g *gen) hostCmd(h, commandID, op string, cmd host.Command) step {
	return func(ctx context.Context) (uint64, error) {
		meta := commands.Meta{CommandID: commandID, Actor: domain.Actor{User: "saga"}, CorrelationID: op}
		r, err := g.app.Hosts.Handle(ctx, commands.HostID(h), cmd, meta)
		return g.count(r.Seq, r.Duplicate, err, "host "+h+" "+commandID)
	}
}

// action is a user action and its saga: requested, operation began, the
// host's report, operation succeeded.
func (g *gen) action(id, h, kind string, cmd server.Command, stepName string, report server.ReportKind) []step {
	op, now := commands.DeriveID(id, kind), time.Now().UTC()
	switch cmd.(type) {
	case server.Stop:
		cmd = server.Stop{Operation: op, At: now}
	case server.Start:
		cmd = server.Start{Operation: op, At: now}
	case server.Reboot:
		cmd = server.Reboot{Operation: op, At: now}
	case server.Delete:
		cmd = server.Delete{Operation: op, At: now}
	}
	return []step{
		g.srv(id, op, kind, cmd),
		g.op(op, "begin", operation.Begin{ID: operation.ID(op), Kind: "server." + kind, ResourceType: server.AggregateType,
			ResourceID: id, At: now, Steps: []operation.StepSpec{{Name: stepName, Timeout: time.Minute}}}),
		g.srv(id, op, "report", server.Report{Host: h, Kind: report, At: now}),
		g.op(op, stepName+"/done", operation.CompleteStep{Step: stepName, At: now}),
	}
}

// fill runs whole servers' steps on writers concurrent writers until at
// least target commits were written; it returns the servers used.
func (g *gen) fill(ctx context.Context, writers, target int, steps func(i int) []step) (int, error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && g.commits.Load() < int64(target) {
				for _, s := range steps(int(next.Add(1) - 1)) {
					if _, err := s(ctx); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return int(next.Load()), ctx.Err()
}
