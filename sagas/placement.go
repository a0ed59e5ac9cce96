package sagas

import (
	"context"
	"fmt"
	"time"

	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/host"
	"github.com/keel-cloud/keel/domain/operation"
	"github.com/keel-cloud/keel/domain/scheduler"
	"github.com/keel-cloud/keel/domain/server"
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

// HostID is the aggregate id of a host name.
func HostID(name string) string { return commands.HostID(name) }

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
	attempt := fmt.Sprint(op.Retries)
	var last scheduler.Result
	for round := 0; round < placementRounds; round++ {
		hosts, err := s.Snapshot.Snapshot(ctx)
		if err != nil {
			return err
		}
		last = scheduler.Schedule(hosts, req, s.Weights)
		if len(last.Candidates) == 0 {
			break
		}
		for _, c := range last.Candidates[:min(len(last.Candidates), candidatesPerRound)] {
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
	}
	im, _, err := s.App.Images.Load(ctx, sv.ImageID)
	if err != nil {
		return req, err
	}
	req.ImageMin = host.Resources{RAMMiB: im.Spec.MinRAMMiB, DiskGiB: im.Spec.MinDiskGiB}
	return req, nil
}

// claim asks one host for capacity; a refusal is (false, refusal).
func (s *ServerSaga) claim(ctx context.Context, opID, attempt string, sv server.State, hostName string, r host.Resources) (bool, error) {
	meta := commands.Meta{CommandID: opID + "/claim/" + attempt + "/" + hostName, Actor: domain.Actor{User: "saga"}, CorrelationID: opID}
	_, err := s.App.Hosts.Handle(ctx, HostID(hostName), host.Claim{Server: string(sv.ID), Resources: r, Operation: opID, At: s.now().UTC()}, meta)
	if err != nil {
		return false, err
	}
	return true, nil
}

// place records the host on the server; if the server moved on meanwhile
// (deleted), the claim is given back at once.
func (s *ServerSaga) place(ctx context.Context, opID, attempt string, sv server.State, hostName string) error {
	err := s.server(ctx, string(sv.ID), opID, "schedule/"+attempt, server.Schedule{Host: hostName, Operation: opID, At: s.now().UTC()})
	if k := domain.KindOf(err); k == domain.Conflict || k == domain.NotFound {
		return s.release(ctx, opID, hostName, string(sv.ID), "server moved on before it was placed")
	}
	return err
}

// release gives a server's claim on a host back (a no-op when there is none).
func (s *ServerSaga) release(ctx context.Context, corr, hostName, serverID, reason string) error {
	if hostName == "" {
		return nil
	}
	meta := commands.Meta{CommandID: corr + "/release/" + hostName + "/" + serverID, Actor: domain.Actor{User: "saga"}, CorrelationID: corr}
	_, err := s.App.Hosts.Handle(ctx, HostID(hostName), host.Release{Server: serverID, Reason: reason, At: s.now().UTC()}, meta)
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
