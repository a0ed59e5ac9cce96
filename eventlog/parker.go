package eventlog

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/keel-cloud/keel/domain"
)

// Defaults of Parking.
const (
	DefaultParkAttempts = 10
	DefaultParkAfter    = time.Minute
	DefaultParkPoll     = 2 * time.Second
)

// Parking is a Subscriber that parks commits whose reaction keeps failing
// instead of retrying them forever in front of the later commits of their
// key. It wraps another Subscriber's subscriptions: a commit whose Handle
// failed MaxAttempts times and for at least After is written to Lot,
// logged at WARN and acknowledged, so the subscription moves on. While a
// subscription runs, a loop looks into Lot every Poll for its records an
// operator marked StateRetry, reads the commit again from Commits and
// hands it to Handle: success removes the record, failure parks it again
// with one more attempt and the new reason. Skipping a commit is removing
// its record.
//
// Attempts are counted in memory, per subscription and sequence, by the
// process that handles the commit: a restart, or a commit handed to
// another replica, starts counting again. That only delays parking.
//
// A retried commit runs out of order with the later commits of its key,
// which went on meanwhile. Reactions that are idempotent and read fresh
// state (sagas, agents) live with that; projections, which apply the log in
// order, must not be parked and are not wrapped.
type Parking struct {
	Subscriber Subscriber
	Lot        ParkingLot
	Commits    CommitGetter
	// MaxAttempts is how many failed attempts it takes to park (default 10).
	MaxAttempts int
	// After is how long a commit must have been failing to be parked
	// (default 1 minute; negative: no minimum): both bounds must be reached.
	After time.Duration
	// Poll is how often retry requests are looked for (default 2 s).
	Poll time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

var _ Subscriber = (*Parking)(nil)

func (p *Parking) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Parking) maxAttempts() int {
	if p.MaxAttempts < 1 {
		return DefaultParkAttempts
	}
	return p.MaxAttempts
}

func (p *Parking) after() time.Duration {
	if p.After < 0 {
		return 0
	}
	if p.After == 0 {
		return DefaultParkAfter
	}
	return p.After
}

func (p *Parking) poll() time.Duration {
	if p.Poll <= 0 {
		return DefaultParkPoll
	}
	return p.Poll
}

// Subscribe implements Subscriber: it runs sub on the wrapped Subscriber
// with its Handle wrapped, and the retry loop of sub beside it.
func (p *Parking) Subscribe(ctx context.Context, sub Subscription) error {
	if err := sub.Validate(); err != nil {
		return err
	}
	sub = sub.Defaults()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); p.retryLoop(ctx, sub) }()
	wrapped := sub
	wrapped.Handle = p.wrap(sub)
	err := p.Subscriber.Subscribe(ctx, wrapped)
	cancel()
	wg.Wait()
	return err
}

// failure is what is known of a commit that has been failing.
type failure struct {
	attempts int
	first    time.Time
}

// wrap returns sub's Handle counting failures and parking the commit once
// both bounds are reached.
func (p *Parking) wrap(sub Subscription) func(context.Context, domain.Envelope) error {
	var mu sync.Mutex
	failing := map[uint64]*failure{}
	return func(ctx context.Context, env domain.Envelope) error {
		err := sub.Handle(ctx, env)
		mu.Lock()
		defer mu.Unlock()
		if err == nil {
			delete(failing, env.Sequence)
			return nil
		}
		if ctx.Err() != nil {
			return err // stopping, not failing
		}
		f := failing[env.Sequence]
		if f == nil {
			f = &failure{first: p.now()}
			failing[env.Sequence] = f
		}
		f.attempts++
		if f.attempts < p.maxAttempts() || p.now().Sub(f.first) < p.after() {
			return err
		}
		if perr := p.park(ctx, sub, env, f, err); perr != nil {
			sub.Log.Error("cannot park commit; retrying it in place", "durable", sub.Name, "seq", env.Sequence, "err", perr)
			return err
		}
		delete(failing, env.Sequence)
		return nil
	}
}

func (p *Parking) park(ctx context.Context, sub Subscription, env domain.Envelope, f *failure, cause error) error {
	pc := ParkedCommit{Subscription: sub.Name, Sequence: env.Sequence, AggregateType: env.AggregateType,
		AggregateID: env.AggregateID, Key: sub.Key(env), Attempts: f.attempts, Reason: BoundReason(cause.Error()),
		FirstFailedAt: f.first, ParkedAt: p.now(), State: StateParked}
	if err := p.Lot.Park(ctx, pc); err != nil {
		return err
	}
	sub.Log.Warn("commit parked: its reaction keeps failing; later commits of its key go on",
		"durable", sub.Name, "seq", env.Sequence, "aggregate", env.AggregateType+"/"+env.AggregateID,
		"attempts", f.attempts, "reason", pc.Reason)
	return nil
}

// retryLoop runs the commits of sub marked for retry, every Poll, until
// ctx ends.
func (p *Parking) retryLoop(ctx context.Context, sub Subscription) {
	t := time.NewTicker(p.poll())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := p.RetryPass(ctx, sub); err != nil && ctx.Err() == nil {
			sub.Log.Warn("parked commits: retry pass failed", "durable", sub.Name, "err", err)
		}
	}
}

// RetryPass runs once every commit of sub marked for retry (sub with
// Defaults applied): what the loop does every Poll.
func (p *Parking) RetryPass(ctx context.Context, sub Subscription) error {
	var due []ParkedCommit
	for after := ""; ; {
		page, next, err := p.Lot.List(ctx, sub.Name, after, 500)
		if err != nil {
			return err
		}
		for _, pc := range page {
			if pc.State == StateRetry {
				due = append(due, pc)
			}
		}
		if next == "" {
			break
		}
		after = next
	}
	var errs []error
	for _, pc := range due {
		errs = append(errs, p.retry(ctx, sub, pc))
	}
	return errors.Join(errs...)
}

// retry hands one parked commit to Handle again.
func (p *Parking) retry(ctx context.Context, sub Subscription, pc ParkedCommit) error {
	env, err := p.Commits.Get(ctx, pc.Sequence)
	if err != nil {
		return err
	}
	herr := sub.Handle(ctx, env)
	if ctx.Err() != nil {
		return nil // stopping: the record stays marked, for the next run
	}
	if herr == nil {
		sub.Log.Info("parked commit retried and handled", "durable", sub.Name, "seq", pc.Sequence)
		if err := p.Lot.Remove(ctx, sub.Name, pc.Sequence); err != nil && !errors.Is(err, ErrNotParked) {
			return err
		}
		return nil
	}
	pc.Attempts++
	pc.Reason, pc.ParkedAt, pc.State = BoundReason(herr.Error()), p.now(), StateParked
	sub.Log.Warn("parked commit retried and failed again; parked again", "durable", sub.Name, "seq", pc.Sequence,
		"aggregate", pc.AggregateType+"/"+pc.AggregateID, "attempts", pc.Attempts, "reason", pc.Reason)
	return p.Lot.Park(ctx, pc)
}
