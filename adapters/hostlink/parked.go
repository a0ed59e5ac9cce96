package hostlink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keel-cloud/keel/adapters/agent"
	"github.com/keel-cloud/keel/domain/catalog"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/eventlog"
)

// WorkParked is the subscription name under which the hosts' work that kept
// failing is parked (keel parked list): the record's key is host/server.
const WorkParked = "host-work"

// VerbParked is the request an agent sends when it gives up on a piece of
// work.
const VerbParked = "parked"

type parkRequest struct {
	Seq           uint64    `json:"seq"`
	Index         int       `json:"index"`
	Server        string    `json:"server"`
	Attempts      int       `json:"attempts"`
	Reason        string    `json:"reason"`
	FirstFailedAt time.Time `json:"first_failed_at"`
}

// parked records a piece of work host name gave up on, for an operator to
// retry or skip.
func (s *Service) parked(ctx context.Context, name string, r parkRequest) error {
	if s.Parked == nil {
		return refusef("this control plane parks nothing")
	}
	if err := s.asksOf(ctx, name, r); err != nil {
		return err
	}
	if pc, err := s.Parked.Get(ctx, WorkParked, r.Seq); err == nil && pc.Key != name+"/"+r.Server {
		s.Log.Warn("refused: a host parked over another host's parked work", "host", name, "seq", r.Seq, "key", pc.Key)
		return refusef("commit %d is parked for %s", r.Seq, pc.Key)
	}
	s.Log.Warn("host gave up on a piece of work; parked", "host", name, "server", r.Server, "seq", r.Seq, "attempts", r.Attempts, "reason", r.Reason)
	return s.Parked.Park(ctx, eventlog.ParkedCommit{Subscription: WorkParked, Sequence: r.Seq, AggregateType: server.AggregateType,
		AggregateID: r.Server, Key: name + "/" + r.Server, Attempts: r.Attempts, Reason: eventlog.BoundReason(r.Reason),
		FirstFailedAt: r.FirstFailedAt, ParkedAt: time.Now().UTC(), State: eventlog.StateParked})
}

// asksOf refuses a parking unless commit r.Seq is server r.Server's and
// its event r.Index asks something of host name (the server itself may be
// gone: a clean-up after a delete is parked too).
func (s *Service) asksOf(ctx context.Context, name string, r parkRequest) error {
	if s.Commits == nil {
		_, _, err := s.onHost(ctx, name, r.Server, "park")
		return err
	}
	env, err := s.Commits.Get(ctx, r.Seq)
	if err != nil {
		return refusef("no commit %d", r.Seq)
	}
	var ev struct {
		Host string `json:"host"`
	}
	if env.AggregateType != server.AggregateType || env.AggregateID != r.Server || r.Index < 0 || r.Index >= len(env.Events) ||
		json.Unmarshal(env.Events[r.Index].Data, &ev) != nil || ev.Host != name {
		s.Log.Warn("refused: a host parked work that was not its own", "host", name, "server", r.Server, "seq", r.Seq)
		return refusef("commit %d asks nothing of host %s about server %s", r.Seq, name, r.Server)
	}
	return nil
}

// RetryParked gives again, every poll until ctx ends, the work of the
// parked records an operator marked for retry (keel parked retry): read
// from the commit again, for the host that parked it only.
func (d *Dispatcher) RetryParked(ctx context.Context, lot eventlog.ParkingLot, commits eventlog.CommitGetter, poll time.Duration) {
	if poll <= 0 {
		poll = eventlog.DefaultParkPoll
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := d.retryPass(ctx, lot, commits); err != nil && ctx.Err() == nil {
			d.Log.Warn("parked host work: retry pass failed", "err", err)
		}
	}
}

func (d *Dispatcher) retryPass(ctx context.Context, lot eventlog.ParkingLot, commits eventlog.CommitGetter) error {
	var errs []error
	for after := ""; ; {
		page, next, err := lot.List(ctx, WorkParked, after, 500)
		if err != nil {
			return err
		}
		for _, pc := range page {
			if pc.State == eventlog.StateRetry {
				errs = append(errs, d.retry(ctx, lot, commits, pc))
			}
		}
		if next == "" {
			return errors.Join(errs...)
		}
		after = next
	}
}

func (d *Dispatcher) retry(ctx context.Context, lot eventlog.ParkingLot, commits eventlog.CommitGetter, pc eventlog.ParkedCommit) error {
	env, err := commits.Get(ctx, pc.Sequence)
	if err != nil {
		return err
	}
	events, err := catalog.Decode(env)
	if err != nil {
		return err
	}
	host := pc.Key[:max(strings.LastIndexByte(pc.Key, '/'), 0)] // the key is host/server
	for i, ev := range events {
		w, err := d.work(ctx, env, i, ev)
		if err != nil {
			return err
		}
		if w == nil || w.Host != host {
			continue
		}
		// A message id of its own: the first one may still be in the
		// duplicate window.
		if err := d.publishAs(ctx, w, fmt.Sprintf("%d-%d-retry-%d", w.Seq, w.Index, time.Now().UnixNano())); err != nil {
			return err
		}
	}
	d.Log.Info("parked host work given again", "host", host, "server", pc.AggregateID, "seq", pc.Sequence)
	if err := lot.Remove(ctx, WorkParked, pc.Sequence); err != nil && !errors.Is(err, eventlog.ErrNotParked) {
		return err
	}
	return nil
}

// park tells keel serve that the agent gave up on w.
func (c *Client) park(ctx context.Context, w agent.Work, attempts int, first time.Time, cause error) error {
	return c.request(ctx, w.Host, VerbParked, parkRequest{Seq: w.Seq, Index: w.Index, Server: w.Server, Attempts: attempts,
		Reason: cause.Error(), FirstFailedAt: first.UTC()}, nil)
}
