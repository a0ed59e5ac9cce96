package sagas

import (
	"context"
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

// ReleaseOrphans gives back claims that no server uses: a process that died
// between claiming a host and recording it on the server leaves one behind.
// Each suspect is checked against the server's own stream before release,
// and only claims older than grace are considered (placement takes
// milliseconds between claim and record).
func (s *ServerSaga) ReleaseOrphans(ctx context.Context, f ClaimFinder, every, grace time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		claims, err := f.SuspectClaims(ctx, s.now().Add(-grace), 200)
		if err != nil {
			s.Log.Warn("list suspect claims", "err", err)
			continue
		}
		for _, c := range claims {
			if err := s.releaseIfOrphan(ctx, c); err != nil && ctx.Err() == nil {
				s.Log.Warn("release orphaned claim", "host", c.Host, "server", c.ServerID, "err", err)
			}
		}
	}
}

func (s *ServerSaga) releaseIfOrphan(ctx context.Context, c Claim) error {
	sv, _, err := s.App.Servers.Load(ctx, c.ServerID)
	if err != nil {
		return err
	}
	if sv.Exists && sv.Status != server.StatusDeleted && (sv.Host == c.Host || sv.Task == server.Scheduling) {
		return nil // in use, or being placed right now
	}
	s.Log.Info("releasing orphaned claim", "host", c.Host, "server", c.ServerID)
	meta := commands.Meta{CommandID: commands.NewID(), Actor: domain.Actor{User: "saga"}}
	_, err = s.App.Hosts.Handle(ctx, commands.HostID(c.Host), host.Release{Server: c.ServerID, Reason: "orphaned claim", At: s.now().UTC()}, meta)
	if domain.KindOf(err) != 0 {
		return nil
	}
	return err
}
