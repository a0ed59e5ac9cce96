package commands

import (
	"context"
	"fmt"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/host"
	"github.com/keel-cloud/keel/domain/hostaggregate"
)

// AddAggregateHost puts the host named hostName into host aggregate aggID.
//
// "One availability zone per host" is the host's rule, so the host commits
// first: it records that it joins the aggregate (and its zone) with
// optimistic concurrency on its own stream, where a racing join of another
// zone is refused. Then the aggregate lists the host, provided its zone is
// still the one the host joined under; if it refuses, the joining is undone.
// If the process dies between the two commits, the host keeps a joining the
// aggregate does not show: it can only make later adds into other zones
// refused, never let a host into two zones, and the same request sent again
// (same Idempotency-Key) completes it.
func (a *App) AddAggregateHost(ctx context.Context, aggID, hostName string, meta Meta) (Result[hostaggregate.State], error) {
	ag, _, err := a.Aggregates.LoadLatest(ctx, aggID)
	if err != nil {
		return Result[hostaggregate.State]{}, err
	}
	if !ag.Exists || ag.Deleted {
		return Result[hostaggregate.State]{}, domain.NotFoundf("host aggregate %s not found", aggID)
	}
	hostID, join, at := HostID(hostName), meta.CommandID, a.Now().UTC()
	hm := meta
	hm.CommandID, hm.IfVersion = meta.CommandID+"/join", 0
	_, err = a.Hosts.Handle(ctx, hostID, host.JoinAggregate{Aggregate: aggID, Name: ag.Name, Zone: ag.Zone(), Join: join, At: at}, hm)
	if domain.KindOf(err) == domain.NotFound {
		return Result[hostaggregate.State]{}, domain.Invalidf("host %s does not exist", hostName)
	}
	if err != nil {
		return Result[hostaggregate.State]{}, err
	}
	res, err := a.Aggregates.Handle(ctx, aggID, hostaggregate.AddHost{Host: hostName, Zone: ag.Zone(), Join: join, At: at}, meta)
	if err == nil || domain.KindOf(err) == 0 {
		return res, err // a transient failure leaves the joining for a retry to complete
	}
	hm.CommandID = meta.CommandID + "/unjoin"
	if _, uerr := a.Hosts.Handle(context.WithoutCancel(ctx), hostID, host.LeaveAggregate{Aggregate: aggID, Join: join, At: at}, hm); uerr != nil {
		return res, fmt.Errorf("undo joining of host %s to aggregate %s after %v: %w", hostName, aggID, err, uerr)
	}
	return res, err
}

// RemoveAggregateHost takes the host named hostName out of host aggregate
// aggID: the aggregate lets it go first, then the host forgets that joining
// (in the reverse order of AddAggregateHost, so the host's record stays a
// superset of the aggregates that list it).
func (a *App) RemoveAggregateHost(ctx context.Context, aggID, hostName string, meta Meta) (Result[hostaggregate.State], error) {
	ag, _, err := a.Aggregates.LoadLatest(ctx, aggID)
	if err != nil {
		return Result[hostaggregate.State]{}, err
	}
	join, at := ag.Joins[hostName], a.Now().UTC()
	res, err := a.Aggregates.Handle(ctx, aggID, hostaggregate.RemoveHost{Host: hostName, Join: join, At: at}, meta)
	if err != nil {
		return res, err
	}
	hm := meta
	hm.CommandID, hm.IfVersion = meta.CommandID+"/leave", 0
	if _, err := a.Hosts.Handle(ctx, HostID(hostName), host.LeaveAggregate{Aggregate: aggID, Join: join, At: at}, hm); err != nil && domain.KindOf(err) == 0 {
		return res, fmt.Errorf("host %s leaves aggregate %s: %w", hostName, aggID, err)
	}
	return res, nil
}
