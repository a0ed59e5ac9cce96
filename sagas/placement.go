package sagas

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/host"
	"github.com/keel-cloud/keel/domain/operation"
	"github.com/keel-cloud/keel/domain/scheduler"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/domain/servergroup"
)

// Snapshot gives the scheduler its view of the hosts (from the read model).
type Snapshot interface {
	Snapshot(ctx context.Context) ([]scheduler.Host, error)
}

// Placement rounds: each reads a fresh snapshot and tries the best
// candidates in turn; a host that refuses the claim (it filled up since the
// snapshot) is left out of later rounds, so every round makes progress and
// placement ends when a host accepts or no candidate is left.
const (
	placementRounds     = 1000
	candidatesPerRound  = 8
	placementRoundPause = 50 * time.Millisecond
)

// schedule runs the placement step: filter and rank hosts, then claim
// capacity on the best one that accepts, then record the host on the server.
func (s *ServerSaga) schedule(ctx context.Context, opID string) error {
	op, _, err := s.App.Operations.Load(ctx, opID)
	if err != nil {
		return err
	}
	sv, _, err := s.App.Servers.Load(ctx, op.ResourceID)
	if err != nil {
		return err
	}
	if sv.Task != server.Scheduling || op.Status != operation.Running {
		return nil // deleted meanwhile, or already placed
	}
	req, err := s.request(ctx, sv)
	if err != nil {
		return err
	}
	if g := sv.Hints.ServerGroup; g != "" {
		// Members of one group are placed one at a time in this process, so
		// each sees where the previous went: soft policies spread (or pack)
		// evenly even when created in parallel. Hard policies do not rest on
		// this: the group aggregate checks them on every add.
		mu, _ := s.groupLocks.LoadOrStore(g, &sync.Mutex{})
		mu.(*sync.Mutex).Lock()
		defer mu.(*sync.Mutex).Unlock()
	}
	attempt := fmt.Sprint(op.Retries)
	var last scheduler.Result
	caughtUp, caughtUpRound := false, 0
	for round := 0; round < placementRounds; round++ {
		if round > 0 && !s.stillScheduling(ctx, opID, op.Retries) {
			return nil // superseded, expired or finished meanwhile
		}
		hosts, err := s.snapshot(ctx, caughtUp && round == caughtUpRound)
		if err != nil {
			return err
		}
		if req.Group, err = s.group(ctx, sv); err != nil {
			return err
		}
		last = scheduler.Schedule(hosts, req, s.Weights)
		if len(last.Candidates) == 0 {
			if caughtUp || s.CatchUp == nil {
				break
			}
			// The read model may lag behind the log (hosts registered or
			// enabled a moment ago): before saying "no valid host", look
			// again once it has caught up with the log's head.
			if err := s.CatchUp(ctx); err != nil {
				s.Log.Warn("placement: read model did not catch up", "operation", opID, "err", err)
			}
			caughtUp, caughtUpRound = true, round+1
			continue
		}
		for _, c := range spreadTies(last.Candidates)[:min(len(last.Candidates), candidatesPerRound)] {
			ok, err := s.claim(ctx, opID, attempt, sv, c.Host, req.Resources)
			if err != nil && domain.KindOf(err) == 0 {
				return err
			}
			if ok {
				return s.place(ctx, opID, attempt, sv, c.Host)
			}
			// The host filled up (or was disabled) since the snapshot: the
			// next rounds leave it out.
			req.Refused = append(req.Refused, c.Host)
		}
		if err := sleep(ctx, placementRoundPause); err != nil {
			return err
		}
	}
	return s.op(ctx, opID, "schedule/failed/"+attempt, operation.FailStep{Step: StepSchedule, Reason: last.Explain(), At: s.now().UTC()})
}

// request builds the scheduler's request from the server and its image.
func (s *ServerSaga) request(ctx context.Context, sv server.State) (scheduler.Request, error) {
	req := scheduler.Request{
		Resources:  host.Resources{VCPUs: sv.Flavor.VCPUs, RAMMiB: sv.Flavor.RAMMiB, DiskGiB: sv.Flavor.DiskGiB},
		AZ:         sv.Hints.AvailabilityZone,
		TargetHost: sv.Hints.TargetHost,
		Exclude:    sv.FailedHosts,
		ExtraSpecs: sv.Flavor.ExtraSpecs,
	}
	for _, g := range sv.DataDisksGiB {
		req.Resources.DiskGiB += g // data disks take the host's disk too
	}
	im, _, err := s.App.Images.Load(ctx, sv.ImageID)
	if err != nil {
		return req, err
	}
	req.ImageMin = host.Resources{RAMMiB: im.Spec.MinRAMMiB, DiskGiB: im.Spec.MinDiskGiB}
	return req, nil
}

// group returns the server's group as the scheduler sees it (members
// elsewhere than this server), read from the group's own stream.
func (s *ServerSaga) group(ctx context.Context, sv server.State) (*scheduler.Group, error) {
	if sv.Hints.ServerGroup == "" {
		return nil, nil
	}
	g, _, err := s.App.Groups.Load(ctx, sv.Hints.ServerGroup)
	if err != nil || !g.Exists {
		return nil, err
	}
	members := map[string]int{}
	for srv, h := range g.Members {
		if srv != string(sv.ID) {
			members[h]++
		}
	}
	return &scheduler.Group{Policy: g.Spec.Policy, MaxPerHost: g.Spec.MaxPerHost, Members: members}, nil
}

// claim places the server in its group on the host (the group checks its
// policy), then takes capacity on the host (the host checks it). Either
// refusal is (false, refusal); a group place whose host refused is undone.
func (s *ServerSaga) claim(ctx context.Context, opID, attempt string, sv server.State, hostName string, r host.Resources) (bool, error) {
	meta := func(what string) commands.Meta {
		return commands.Meta{CommandID: opID + "/" + what + "/" + attempt + "/" + hostName, Actor: domain.Actor{User: "saga"}, CorrelationID: opID}
	}
	g, sid := sv.Hints.ServerGroup, string(sv.ID)
	if g != "" {
		if _, err := s.App.Groups.Handle(ctx, g, servergroup.AddMember{Server: sid, Host: hostName, At: s.now().UTC()}, meta("group")); err != nil {
			return false, err
		}
	}
	_, err := s.App.Hosts.Handle(ctx, commands.HostID(hostName), host.Claim{Server: sid, Resources: r, Operation: opID, At: s.now().UTC()}, meta("claim"))
	if err == nil {
		return true, nil
	}
	if g != "" && domain.KindOf(err) != 0 {
		if _, uerr := s.App.Groups.Handle(ctx, g, servergroup.RemoveMember{Server: sid, At: s.now().UTC()}, meta("ungroup")); uerr != nil && domain.KindOf(uerr) == 0 {
			return false, uerr
		}
	}
	return false, err
}

// leave takes a server out of its group (deleted, or its build failed).
func (s *ServerSaga) leave(ctx context.Context, corr, sid string) error {
	sv, _, err := s.App.Servers.Load(ctx, sid)
	if err != nil || sv.Hints.ServerGroup == "" {
		return err
	}
	meta := commands.Meta{CommandID: corr + "/leave/" + sid, Actor: domain.Actor{User: "saga"}, CorrelationID: corr}
	_, err = s.App.Groups.Handle(ctx, sv.Hints.ServerGroup, servergroup.RemoveMember{Server: sid, At: s.now().UTC()}, meta)
	if domain.KindOf(err) != 0 {
		return nil
	}
	return err
}

// place records the host on the server; if the server moved on meanwhile
// (deleted), the claim is given back at once.
func (s *ServerSaga) place(ctx context.Context, opID, attempt string, sv server.State, hostName string) error {
	err := s.server(ctx, string(sv.ID), opID, "schedule/"+attempt, server.Schedule{Host: hostName, Operation: opID, At: s.now().UTC()})
	if k := domain.KindOf(err); k == domain.Conflict || k == domain.NotFound {
		if err := s.release(ctx, opID, hostName, string(sv.ID), "server moved on before it was placed"); err != nil {
			return err
		}
		return s.leave(ctx, opID, string(sv.ID))
	}
	return err
}

// release gives a server's claim on a host back (a no-op when there is none).
func (s *ServerSaga) release(ctx context.Context, corr, hostName, serverID, reason string) error {
	if hostName == "" {
		return nil
	}
	meta := commands.Meta{CommandID: corr + "/release/" + hostName + "/" + serverID, Actor: domain.Actor{User: "saga"}, CorrelationID: corr}
	_, err := s.App.Hosts.Handle(ctx, commands.HostID(hostName), host.Release{Server: serverID, Reason: reason, At: s.now().UTC()}, meta)
	if k := domain.KindOf(err); k == domain.NotFound {
		return nil
	}
	return err
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// tieScore: candidates scoring within this of the best are as good.
const tieScore = 0.02

// spreadTies shuffles the candidates that score as well as the best, so
// that parallel requests do not all race for the same host (and get
// refused) when several are equally good.
func spreadTies(cs []scheduler.Candidate) []scheduler.Candidate {
	n := 0
	for n < len(cs) && cs[n].Score >= cs[0].Score-tieScore {
		n++
	}
	if n <= 1 {
		return cs
	}
	out := slices.Clone(cs)
	rand.Shuffle(n, func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// snapshotCache shares one read of the hosts between the placements of
// the next moment: the snapshot only ranks hosts, the hosts' own claims
// decide, so a little staleness costs a refused claim, never a double booking.
type snapshotCache struct {
	src Snapshot
	ttl time.Duration

	mu    sync.Mutex
	at    time.Time
	hosts []scheduler.Host
}

func (c *snapshotCache) Snapshot(ctx context.Context) ([]scheduler.Host, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hosts != nil && time.Since(c.at) < c.ttl {
		return c.hosts, nil
	}
	hs, err := c.src.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	c.hosts, c.at = hs, time.Now()
	return hs, nil
}

// Fresh reads the source again, whatever the cache holds.
func (c *snapshotCache) Fresh(ctx context.Context) ([]scheduler.Host, error) {
	c.mu.Lock()
	c.hosts = nil
	c.mu.Unlock()
	return c.Snapshot(ctx)
}

// snapshot returns the hosts to schedule on; fresh skips any cache.
func (s *ServerSaga) snapshot(ctx context.Context, fresh bool) ([]scheduler.Host, error) {
	if f, ok := s.Snapshot.(interface {
		Fresh(context.Context) ([]scheduler.Host, error)
	}); ok && fresh {
		return f.Fresh(ctx)
	}
	return s.Snapshot.Snapshot(ctx)
}

// CachedSnapshot wraps a snapshot source with a short cache.
func CachedSnapshot(src Snapshot, ttl time.Duration) Snapshot {
	return &snapshotCache{src: src, ttl: ttl}
}

// stillScheduling reports whether the operation still waits on this
// placement: running, at its schedule step, in the same attempt, before the
// step's deadline.
func (s *ServerSaga) stillScheduling(ctx context.Context, opID string, retries int) bool {
	op, _, err := s.App.Operations.Load(ctx, opID)
	if err != nil || op.Status != operation.Running || op.CurrentStep() != StepSchedule || op.Retries != retries {
		return false
	}
	return s.now().Before(op.Steps[op.Current].Deadline)
}
