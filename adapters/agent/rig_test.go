package agent_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/nats-io/nkeys"

	"github.com/keel-cloud/keel/adapters/agent"
	"github.com/keel-cloud/keel/adapters/hostlink"
	"github.com/keel-cloud/keel/adapters/jetstream/jstest"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/eventlog/memlog"
)

// rig is the control plane an agent under test speaks to: the in-memory
// event log, and the serve side of the host link (its request answers and
// its work dispatcher) on a private embedded NATS, as in keel serve.
type rig struct {
	log  *memlog.Log
	app  *commands.App
	link *hostlink.Client
}

// newRig starts the rig until ctx ends. opener opens the admin passwords
// for the dispatcher (keel serve's secrets key; nil: none); seal, when not
// nil, changes the seal key of the fleet credentials the agent holds
// (nkeys.KeyPair(nil) in a func: none).
func newRig(t *testing.T, ctx context.Context, opener hostlink.Opener, seal func(*hostlink.Credentials)) rig {
	t.Helper()
	e := jstest.Server(t, "")
	log := memlog.New()
	app := commands.NewApp(log)
	quiet := slog.New(slog.DiscardHandler)
	local, err := hostlink.StartLocal(ctx, e.Conn, nil, app, log, nil, opener, quiet)
	must(t, err)
	creds := *local.Fleet
	if seal != nil {
		seal(&creds)
	}
	link := hostlink.NewClient(e.Conn, &creds, quiet)
	return rig{log: log, app: app, link: link}
}

// run registers ag's hosts (as an agent does before any server can be
// placed there) and runs it until the returned stop is called.
func run(t *testing.T, ctx context.Context, ag *agent.Agent) (stop func()) {
	t.Helper()
	must(t, ag.Register(ctx))
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ag.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	}
}

func otherSeal(c *hostlink.Credentials) {
	x, err := nkeys.CreateCurveKeys()
	if err != nil {
		panic(err)
	}
	c.Seal = x
}

func noSeal(c *hostlink.Credentials) { c.Seal = nil }
