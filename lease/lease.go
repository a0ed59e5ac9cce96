// Package lease is the port to a lease that one process at a time holds
// across all replicas of keel serve, for work that must have one active
// instance (the OVN network adapter: two writers of the Northbound database
// would race on rows that have no unique index). A hold lasts the store's
// TTL from its last renewal; a holder that dies loses it when the TTL runs
// out, one that stops releases it at once.
//
// Run is the campaign loop over a Store. Implementations: adapters/jetstream
// (a KV bucket whose entries age out after the TTL) and Memory here, for
// unit tests. This package must not import a transport: like eventlog, it is
// what code that must stay free of NATS depends on.
package lease

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// ErrLost is what Renew and Release return when the lease is no longer held
// under the revision given: it expired, and maybe another took it.
var ErrLost = errors.New("lease lost")

// Store keeps leases, each held by at most one holder at a time.
type Store interface {
	// Acquire takes name for holder when nobody holds it and returns the
	// revision of the hold; ok is false, with no error, when another holds it.
	Acquire(ctx context.Context, name, holder string) (rev uint64, ok bool, err error)
	// Renew starts the TTL of the hold rev again and returns its new
	// revision, or ErrLost.
	Renew(ctx context.Context, name, holder string, rev uint64) (uint64, error)
	// Release gives up the hold rev, or returns ErrLost when it is gone.
	Release(ctx context.Context, name string, rev uint64) error
	// TTL is how long a hold lasts without renewal.
	TTL() time.Duration
}

// Options tune Run; zero values take the defaults.
type Options struct {
	// Renew is how often a holder renews (default TTL/3).
	Renew time.Duration
	// Poll is how often a process that does not hold the lease tries to
	// take it (default TTL/10, at least 100 ms).
	Poll time.Duration
	// Eligible, when set, says whether this process may lead now: while it
	// returns false Run does not campaign (a process that cannot reach
	// what it would write must leave the lease to one that can).
	Eligible func() bool
	// Log receives changes of leadership and store errors (nil: discarded).
	Log *slog.Logger
}

func (o Options) withDefaults(ttl time.Duration) Options {
	if o.Renew <= 0 {
		o.Renew = ttl / 3
	}
	if o.Poll <= 0 {
		o.Poll = max(ttl/10, 100*time.Millisecond)
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o
}

// Run campaigns for name as holder until ctx ends. Whenever it holds the
// lease it runs lead with a context that ends when the hold is lost or ctx
// ends. It gives the hold up before the store can hand it to another: when
// no renewal has succeeded for four fifths of the TTL since the last good
// one began, lead's context ends. When lead returns, the lease is released
// (so that another replica takes over at once) and the campaign goes on.
func Run(ctx context.Context, s Store, name, holder string, o Options, lead func(context.Context)) {
	o = o.withDefaults(s.TTL())
	for ctx.Err() == nil {
		if o.Eligible != nil && !o.Eligible() {
			sleep(ctx, o.Poll)
			continue
		}
		rev, ok, err := s.Acquire(ctx, name, holder)
		switch {
		case err != nil && ctx.Err() == nil:
			o.Log.Warn("lease: cannot campaign", "lease", name, "err", err)
		case ok:
			o.Log.Info("lease taken: this process is the active one", "lease", name, "holder", holder)
			hold(ctx, s, name, holder, rev, o, lead)
		}
		sleep(ctx, o.Poll)
	}
}

// hold runs lead while renewing rev, and releases the lease when lead
// returns (a hold that was lost is not released: it is another's now).
func hold(ctx context.Context, s Store, name, holder string, rev uint64, o Options, lead func(context.Context)) {
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); lead(lctx) }()
	rev, lost := keep(lctx, s, name, holder, rev, o, done)
	cancel()
	<-done
	if lost {
		return
	}
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), o.Renew)
	defer rcancel()
	if err := s.Release(rctx, name, rev); err != nil {
		o.Log.Warn("lease: cannot release; it expires after its TTL", "lease", name, "err", err)
	} else {
		o.Log.Info("lease released", "lease", name, "holder", holder)
	}
}

// keep renews the hold until ctx ends or lead is done (lost false), or
// until the hold is lost or runs too close to its end (lost true).
func keep(ctx context.Context, s Store, name, holder string, rev uint64, o Options, done <-chan struct{}) (uint64, bool) {
	ttl := s.TTL()
	lastGood := time.Now() // Acquire began before this: the store's TTL runs from later
	t := time.NewTicker(o.Renew)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return rev, false
		case <-done:
			return rev, false
		case <-t.C:
		}
		began := time.Now()
		rctx, cancel := context.WithDeadline(ctx, lastGood.Add(ttl*4/5))
		next, err := s.Renew(rctx, name, holder, rev)
		cancel()
		switch {
		case err == nil:
			rev, lastGood = next, began
		case errors.Is(err, ErrLost):
			o.Log.Warn("lease lost: this process stops being the active one", "lease", name, "holder", holder)
			return rev, true
		case ctx.Err() != nil:
			return rev, false
		case time.Since(lastGood) >= ttl*4/5:
			o.Log.Warn("lease: no renewal for too long; this process stops being the active one", "lease", name, "err", err)
			return rev, true
		default:
			o.Log.Warn("lease: renewal failed; trying again", "lease", name, "err", err)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
