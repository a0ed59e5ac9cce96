package monitors

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/host"
	"github.com/keel-cloud/keel/domain/server"
)

// Claim is a capacity claim as the read model shows it.
type Claim struct {
	Host     string
	ServerID string
	At       time.Time
}

// ClaimFinder lists claims older than a time whose server the read model
// does not show on that host.
type ClaimFinder interface {
	SuspectClaims(ctx context.Context, before time.Time, n int) ([]Claim, error)
}

// Orphans gives back claims that no server uses: a process that died
// between claiming a host and recording it on the server leaves one behind.
// Each suspect is checked against the server's own stream before release,
// and only claims older than Grace are considered (placement takes
// milliseconds between claim and record).
type Orphans struct {
	App   *commands.App
	Find  ClaimFinder
	Grace time.Duration
	Log   *slog.Logger
	Now   func() time.Time
}

// Run makes a pass every interval until ctx ends.
func (o *Orphans) Run(ctx context.Context, every time.Duration) {
	tick(ctx, every, func() {
		if err := o.Pass(ctx); err != nil && ctx.Err() == nil {
			o.Log.Warn("orphaned claims", "err", err)
		}
	})
}

// Pass releases the orphaned claims seen now; it returns the first error
// met (the rest of the pass is still done).
func (o *Orphans) Pass(ctx context.Context) error {
	claims, err := o.Find.SuspectClaims(ctx, clock(o.Now).Add(-o.Grace), 200)
	if err != nil {
		return fmt.Errorf("list suspect claims: %w", err)
	}
	var first error
	for _, c := range claims {
		if err := o.releaseIfOrphan(ctx, c); err != nil && ctx.Err() == nil {
			o.Log.Warn("release orphaned claim", "host", c.Host, "server", c.ServerID, "err", err)
			first = cmpErr(first, err)
		}
	}
	return first
}

func (o *Orphans) releaseIfOrphan(ctx context.Context, c Claim) error {
	sv, _, err := o.App.Servers.Load(ctx, c.ServerID)
	if err != nil {
		return err
	}
	if sv.Exists && sv.Status != server.StatusDeleted && (sv.Host == c.Host || sv.Task == server.Scheduling) {
		return nil // in use, or being placed right now
	}
	o.Log.Info("releasing orphaned claim", "host", c.Host, "server", c.ServerID)
	m := commands.Meta{CommandID: commands.NewID(), Actor: domain.Actor{User: "saga"}}
	_, err = o.App.Hosts.Handle(ctx, commands.HostID(c.Host), host.Release{Server: c.ServerID, Reason: "orphaned claim", At: clock(o.Now)}, m)
	if domain.KindOf(err) != 0 {
		return nil // released meanwhile, or the host is gone
	}
	return err
}
