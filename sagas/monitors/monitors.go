// Package monitors holds the reconcilers that run beside the sagas: they
// are not reactions to one event but periodic looks at the read model
// (or at heartbeats) that send commands when something is overdue,
// orphaned or silent. Each aggregate checks the command again, so a
// monitor acting on a stale view is harmless, and several replicas may run
// one each.
//
//   - Deadlines: a step past its deadline expires (an overdue spawn is a
//     failed spawn, tried again elsewhere); a compensation that does not
//     finish is ended.
//   - Orphans: a host claim that no server uses is released.
//   - QuotaSweep: a quota reservation whose server, port, network or
//     security group never came to be (or is gone) is given back.
//   - AddressSweep: an address no port holds is given back to its subnet.
//   - Liveness: heartbeats and goodbyes become host down and up events.
package monitors

import (
	"context"
	"time"

	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
)

// tick calls fn every interval until ctx ends.
func tick(ctx context.Context, every time.Duration, fn func()) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fn()
	}
}

func clock(now func() time.Time) time.Time {
	if now != nil {
		return now().UTC()
	}
	return time.Now().UTC()
}

// meta is the metadata of a monitor's command on an operation's behalf; the
// id is deterministic, so that two replicas acting at once send one command.
func meta(opID, what string) commands.Meta {
	return commands.Meta{CommandID: opID + "/" + what, Actor: domain.Actor{User: "saga"}, CorrelationID: opID}
}

// tolerate drops the refusals that mean the aggregate moved on (what the
// monitor wanted happened, or no longer applies).
func tolerate(err error) error {
	if k := domain.KindOf(err); k == domain.Conflict || k == domain.NotFound {
		return nil
	}
	return err
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}
