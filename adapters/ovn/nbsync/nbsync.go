// Package nbsync is the network adapter that runs inside keel serve: it
// keeps the OVN Northbound database in line with the networking aggregates
// of the event log, through adapters/ovn.
//
// Every replica folds the log into a Model (a Follower from sequence 1, in
// memory: the desired state, warm on standby replicas). One replica at a
// time, the holder of the lease "ovn-nb" (package lease), writes the NB:
// when it takes the lease it reconciles everything against the model, then
// it follows the durable subscription ovn-nb-v1 and, for each commit,
// ensures or deletes the rows of the aggregate it names (as the model has
// it now, not as the commit had it), and it reconciles again every
// Interval and after each reconnection to the NB. A change that keeps
// failing is parked like any subscription's (eventlog.Parking, wrapped by
// the caller), and the next reconcile repairs it anyway: nothing is lost to
// a crash or an NB outage, since the log holds the desired state and a
// reconcile converges to it.
//
// It must not decide anything (what exists is the domain's) and must not
// write the NB without holding the lease.
package nbsync

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/keel-cloud/keel/adapters/ovn"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/floatingip"
	"github.com/keel-cloud/keel/domain/network"
	"github.com/keel-cloud/keel/domain/port"
	"github.com/keel-cloud/keel/domain/router"
	"github.com/keel-cloud/keel/domain/secgroup"
	"github.com/keel-cloud/keel/domain/subnet"
	"github.com/keel-cloud/keel/eventlog"
	"github.com/keel-cloud/keel/lease"
)

// Names of the lease and the durable subscription. Renaming the
// subscription re-reads the log (harmless: every write is idempotent).
const (
	LeaseName        = "ovn-nb"
	SubscriptionName = "ovn-nb-v1"
)

// DefaultInterval is the period of the full reconcile.
const DefaultInterval = time.Minute

// DefaultNBDownLimit is how long the holder keeps the lease while it
// cannot reach the NB.
const DefaultNBDownLimit = 30 * time.Second

// NB is what the syncer needs of the Northbound adapter (*ovn.Client).
type NB interface {
	EnsureNetwork(ctx context.Context, n network.State, subnets []subnet.State) error
	DeleteNetwork(ctx context.Context, id network.ID) error
	EnsureSubnet(ctx context.Context, s subnet.State) error
	DeleteSubnet(ctx context.Context, id subnet.ID) error
	EnsureSecurityGroup(ctx context.Context, g secgroup.State) error
	DeleteSecurityGroup(ctx context.Context, id secgroup.ID) error
	EnsurePort(ctx context.Context, p port.State) error
	DeletePort(ctx context.Context, id port.ID) error
	EnsureRouter(ctx context.Context, r router.State, ports []port.State, o ovn.RouterOptions) error
	DeleteRouter(ctx context.Context, id router.ID) error
	EnsureFloatingIP(ctx context.Context, f floatingip.State) error
	DeleteFloatingIP(ctx context.Context, id floatingip.ID) error
	Reconcile(ctx context.Context, d ovn.Desired) (ovn.Report, error)
	Connected() bool
}

var _ NB = (*ovn.Client)(nil)

// Syncer is the network adapter of one keel serve.
type Syncer struct {
	NB     NB
	Log    eventlog.Follower   // the whole log, folded into the model
	Subs   eventlog.Subscriber // the commits to apply (wrap it in eventlog.Parking)
	Leases lease.Store
	// Holder names this process in the lease (unique per process).
	Holder string
	// Interval is the period of the full reconcile (default 1 minute).
	Interval time.Duration
	// NBDownLimit is how long the holder keeps the lease while the NB
	// connection is down (default 30 s); then it lets the lease go, and
	// campaigns again only once connected, so that a replica that reaches
	// the NB writes it.
	NBDownLimit time.Duration
	// Router is what routers need beyond their state (gateway chassis).
	Router ovn.RouterOptions
	Logger *slog.Logger
	// Metrics, when set, counts reconciles and changes.
	Metrics *Metrics

	model *Model
	write sync.Mutex // one writer of the NB in this process
	once  sync.Once
}

func (s *Syncer) init() {
	s.once.Do(func() {
		s.model = NewModel()
		if s.Interval <= 0 {
			s.Interval = DefaultInterval
		}
		if s.NBDownLimit <= 0 {
			s.NBDownLimit = DefaultNBDownLimit
		}
		if s.Logger == nil {
			s.Logger = slog.New(slog.DiscardHandler)
		}
		s.Logger = s.Logger.With("component", "ovn-nb")
	})
}

// Model is the desired state the syncer has folded so far.
func (s *Syncer) Model() *Model { s.init(); return s.model }

// Run follows the log into the model and campaigns for the lease until ctx
// ends; holding it, it writes the NB.
func (s *Syncer) Run(ctx context.Context) {
	s.init()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); s.follow(ctx) }()
	lease.Run(ctx, s.Leases, LeaseName, s.Holder, lease.Options{Log: s.Logger, Eligible: s.NB.Connected}, s.lead)
	wg.Wait()
}

// follow folds the log into the model, from where it stopped, until ctx
// ends; an error (a commit it cannot decode) is logged and tried again.
func (s *Syncer) follow(ctx context.Context) {
	for ctx.Err() == nil {
		err := s.Log.Follow(ctx, s.model.Sequence()+1, 0, s.model.Apply)
		if err != nil && ctx.Err() == nil {
			s.Logger.Error("cannot fold the log into the desired network state; retrying", "at", s.model.Sequence(), "err", err)
			sleep(ctx, time.Second)
		}
	}
}

// lead writes the NB while this process holds the lease: a reconcile
// first, then the subscription, and a reconcile every Interval and after
// each reconnection. It gives the lease up when the NB has been
// unreachable for NBDownLimit.
func (s *Syncer) lead(ctx context.Context) {
	s.Metrics.active(true)
	defer s.Metrics.active(false)
	s.reconcile(ctx, "takeover")
	sub := eventlog.Subscription{Name: SubscriptionName, AggregateTypes: AggregateTypes, Workers: 1,
		Handle: s.handle, Log: s.Logger}
	sctx, cancel := context.WithCancel(ctx)
	var subErr error
	subDone := make(chan struct{})
	go func() { defer close(subDone); subErr = s.Subs.Subscribe(sctx, sub) }()
	defer func() { cancel(); <-subDone }() // no write after the lease is given up
	tick := time.NewTicker(s.Interval)
	defer tick.Stop()
	watch := time.NewTicker(time.Second)
	defer watch.Stop()
	conn := connWatch{up: s.NB.Connected(), since: time.Now()}
	for {
		select {
		case <-ctx.Done():
			return
		case <-subDone:
			// The lease goes back, so that this or another replica starts again.
			s.Logger.Error("ovn-nb subscription stopped; giving the lease up", "err", subErr)
			return
		case <-tick.C:
			s.reconcile(ctx, "periodic")
		case <-watch.C:
			switch conn.check(s.NB.Connected(), s.NBDownLimit) {
			case reconnected:
				s.reconcile(ctx, "reconnected")
			case downTooLong:
				s.Logger.Warn("the OVN Northbound database has been unreachable too long; giving the lease up", "for", time.Since(conn.since).Round(time.Second))
				return
			}
		}
	}
}

// connWatch follows the NB connection from one look to the next.
type connWatch struct {
	up    bool
	since time.Time // when it went down
}

// What a look at the connection found.
const (
	unchanged = iota
	reconnected
	downTooLong
)

func (w *connWatch) check(up bool, limit time.Duration) int {
	was := w.up
	w.up = up
	switch {
	case up && !was:
		return reconnected
	case !up && was:
		w.since = time.Now()
	case !up && time.Since(w.since) >= limit:
		return downTooLong
	}
	return unchanged
}

// reconcile brings the NB in line with the model once it has caught up
// with the log as it stands now (a model behind the log would delete the
// rows of newer resources).
func (s *Syncer) reconcile(ctx context.Context, why string) {
	last, err := s.Log.LastSequence(ctx)
	if err == nil {
		err = s.model.WaitFor(ctx, last)
	}
	if err != nil {
		if ctx.Err() == nil {
			s.Logger.Warn("reconcile skipped: the log cannot be read", "why", why, "err", err)
		}
		return
	}
	s.write.Lock()
	defer s.write.Unlock()
	began := time.Now()
	rep, err := s.NB.Reconcile(ctx, s.model.Desired(s.Router))
	s.Metrics.reconciled(rep, err, time.Since(began))
	args := []any{"why", why, "at", s.model.Sequence(), "took", time.Since(began).Round(time.Millisecond),
		"transactions", rep.Transactions}
	for kind, n := range rep.Repaired {
		args = append(args, "repaired_"+kind, n)
	}
	for kind, n := range rep.Deleted {
		args = append(args, "deleted_"+kind, n)
	}
	switch {
	case err != nil:
		s.Logger.Warn("reconcile: some resources failed", append(args, "err", err)...)
	case rep.Changed():
		s.Logger.Info("reconcile repaired the northbound database", args...)
	default:
		s.Logger.Debug("reconcile: nothing to repair", args...)
	}
}

// handle applies one commit: the rows of its aggregate are made to match
// the model, which has folded at least that commit. While the NB is not
// connected it waits rather than fail, so that an outage parks nothing.
func (s *Syncer) handle(ctx context.Context, env domain.Envelope) error {
	if err := s.model.WaitFor(ctx, env.Sequence); err != nil {
		return err
	}
	for {
		if err := s.waitConnected(ctx); err != nil {
			return err
		}
		s.write.Lock()
		err := s.apply(ctx, env.AggregateType, env.AggregateID)
		s.write.Unlock()
		if err == nil || s.NB.Connected() {
			s.Metrics.applied(env.AggregateType, err)
			return err
		}
		// The connection went during the attempt: not the change's fault.
	}
}

func (s *Syncer) waitConnected(ctx context.Context) error {
	for !s.NB.Connected() {
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// apply ensures the rows of aggregate id of type typ, or deletes them when
// the model no longer holds it.
func (s *Syncer) apply(ctx context.Context, typ, id string) error {
	m, nb := s.model, s.NB
	switch typ {
	case network.AggregateType:
		if n, ok := m.Network(id); ok {
			return nb.EnsureNetwork(ctx, n, m.SubnetsOf(n))
		}
		return nb.DeleteNetwork(ctx, network.ID(id))
	case subnet.AggregateType:
		if sn, ok := m.Subnet(id); ok {
			return nb.EnsureSubnet(ctx, sn)
		}
		return nb.DeleteSubnet(ctx, subnet.ID(id))
	case secgroup.AggregateType:
		if g, ok := m.SecurityGroup(id); ok {
			return nb.EnsureSecurityGroup(ctx, g)
		}
		return nb.DeleteSecurityGroup(ctx, secgroup.ID(id))
	case port.AggregateType:
		if p, ok := m.Port(id); ok {
			return nb.EnsurePort(ctx, p)
		}
		return nb.DeletePort(ctx, port.ID(id))
	case router.AggregateType:
		if r, ok := m.Router(id); ok {
			return nb.EnsureRouter(ctx, r, m.RouterPorts(r), s.Router)
		}
		return nb.DeleteRouter(ctx, router.ID(id))
	case floatingip.AggregateType:
		if f, ok := m.FloatingIP(id); ok {
			return nb.EnsureFloatingIP(ctx, f)
		}
		return nb.DeleteFloatingIP(ctx, floatingip.ID(id))
	}
	return fmt.Errorf("nbsync: commit of aggregate type %q, which the NB does not reflect", typ)
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
