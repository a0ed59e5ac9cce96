package hostlink

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/eventlog"
)

// Local is the serve side of the link run on its own, for tests and
// benchmarks of agents: keel serve wires the same pieces.
type Local struct {
	Keys    *Keys
	Service *Service
	// Fleet are fresh fleet credentials (a client with them on the same
	// NATS is a simulated fleet).
	Fleet *Credentials
}

// StartLocal answers agents' requests for app on nc and gives them the work
// of the server commits events delivers, until ctx ends. access is the
// embedded server's policing (nil: none).
func StartLocal(ctx context.Context, nc *nats.Conn, access *Access, app *commands.App, events eventlog.Subscriber,
	images ImageSource, secrets Opener, log *slog.Logger) (*Local, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	fleet, err := NewCredentials(Fleet)
	if err != nil {
		return nil, err
	}
	keys, err := OpenKeys(ctx, js, 1, access, fleet, log)
	if err != nil {
		return nil, err
	}
	if access != nil {
		user, _, err := fleet.Public()
		if err != nil {
			return nil, err
		}
		access.AdmitFleet(user)
	}
	svc := &Service{App: app, Keys: keys, Images: images, JS: js, NC: nc, Log: log}
	if g, ok := events.(eventlog.CommitGetter); ok {
		svc.Commits = g
	}
	if err := svc.Serve(ctx, nc); err != nil {
		return nil, err
	}
	d := &Dispatcher{App: app, JS: js, Keys: keys, Secrets: secrets, Log: log}
	fw := &Forwarder{JS: js, NC: nc, Log: log, Retry: 200 * time.Millisecond, StillAsked: d.StillAsked}
	go func() {
		if err := fw.Run(ctx); err != nil && ctx.Err() == nil {
			log.Error("forwarder stopped", "err", err)
		}
	}()
	go func() {
		if err := events.Subscribe(ctx, d.Subscription()); err != nil && ctx.Err() == nil {
			log.Error("dispatcher stopped", "err", err)
		}
	}()
	return &Local{Keys: keys, Service: svc, Fleet: fleet}, nil
}
