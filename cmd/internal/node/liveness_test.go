package node_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/keel-cloud/keel/adapters/agent"
	"github.com/keel-cloud/keel/adapters/fake"
	"github.com/keel-cloud/keel/adapters/hostlink"
	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/cmd/internal/node"
)

// runAgent runs simulated hosts as a separate agent would: over a NATS
// connection of its own, with the agents' credentials of n. It returns a
// function that stops it.
func runAgent(t *testing.T, n *node.Node, prefix string, hosts int) func() {
	t.Helper()
	creds, err := hostlink.ReadCredentials(n.AgentCredentials())
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	link, err := hostlink.Connect(n.NATSURL(), creds, prefix, quiet)
	if err != nil {
		t.Fatal(err)
	}
	fleet, _ := fake.Fleet(prefix, hosts, fake.Knobs{}, 16, 16384, 100)
	ag := &agent.Agent{Name: prefix, Link: link, Hosts: fleet, HeartbeatEvery: 100 * time.Millisecond, Log: quiet}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = ag.Run(ctx) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
			link.Close()
		}
	}
	t.Cleanup(stop)
	return stop
}

func (e *env) hostState(name string) string {
	for _, h := range e.hosts() {
		if h.Name == name {
			return h.State
		}
	}
	return "missing"
}

func TestHostGoesDownWithoutHeartbeatsAndComesBack(t *testing.T) {
	e := start(t, func(c *node.Config) {
		c.FakeHosts, c.SimulatedAgents = 0, true
		c.NATSListen = "127.0.0.1:-1"
		c.HeartbeatTimeout = time.Second
	})
	e.seed()
	stop := runAgent(t, e.node, "remote", 1)
	eventually(t, 10*time.Second, func() error {
		if s := e.hostState("remote-1"); s != "up" {
			return errors.New("remote-1 is " + s)
		}
		return nil
	})
	acc, _ := e.createServer("on-remote")
	if op := e.waitOp(acc.OperationID, 20*time.Second); op.Status != "succeeded" {
		t.Fatalf("create on a remote agent's host: %+v", op)
	}
	head := func() uint64 {
		s, _ := e.node.Store.LastSequence(context.Background())
		return s
	}
	before := head()
	time.Sleep(500 * time.Millisecond) // five heartbeats
	if after := head(); after != before {
		t.Fatalf("heartbeats wrote %d commits to the event log", after-before)
	}

	stop()
	start := time.Now()
	eventually(t, 10*time.Second, func() error {
		if s := e.hostState("remote-1"); s != "down" {
			return errors.New("remote-1 is " + s)
		}
		return nil
	})
	t.Logf("marked down %s after the agent stopped (timeout 1s)", time.Since(start).Round(100*time.Millisecond))
	if s, _ := e.server(acc.Server.ID); s.Power != "UNKNOWN" || s.Status != "ACTIVE" {
		t.Fatalf("a server on a down host shows %+v", s)
	}
	// A down host takes no new servers.
	r := e.must(202, e.call("POST", "/v1/servers", map[string]any{"name": "nowhere", "flavor": "small", "image": "tiny"}))
	var acc2 api.Accepted
	r.json(t, &acc2)
	if op := e.waitOp(acc2.OperationID, 20*time.Second); op.Status != "failed" {
		t.Fatalf("create with the only host down: %+v", op)
	}

	runAgent(t, e.node, "remote", 1)
	eventually(t, 10*time.Second, func() error {
		if s := e.hostState("remote-1"); s != "up" {
			return errors.New("remote-1 is " + s)
		}
		return nil
	})
	if s, _ := e.server(acc.Server.ID); s.Power != "RUNNING" {
		t.Fatalf("after the host came back the server shows %+v", s)
	}
}

// An agent that stops cleanly takes its hosts down at once, well before the
// heartbeat timeout, so no new server is sent there; after a restart of
// keel serve a down host stays down until its agent is heard again.
func TestStoppedAgentsHostsAreDownAtOnce(t *testing.T) {
	e := start(t, func(c *node.Config) {
		c.FakeHosts, c.SimulatedAgents = 0, true
		c.NATSListen = "127.0.0.1:-1"
		c.HeartbeatTimeout = 30 * time.Second
	})
	e.seed()
	stop := runAgent(t, e.node, "tidy", 1)
	eventually(t, 10*time.Second, func() error {
		if s := e.hostState("tidy-1"); s != "up" {
			return errors.New("tidy-1 is " + s)
		}
		return nil
	})
	stop()
	eventually(t, 3*time.Second, func() error {
		if s := e.hostState("tidy-1"); s != "down" {
			return errors.New("tidy-1 is " + s)
		}
		return nil
	})

	e.restart()
	time.Sleep(1500 * time.Millisecond) // a liveness check or more after the restart
	if s := e.hostState("tidy-1"); s != "down" {
		t.Fatalf("after a restart of keel serve, a host not heard from yet is %s", s)
	}
	runAgent(t, e.node, "tidy", 1)
	eventually(t, 10*time.Second, func() error {
		if s := e.hostState("tidy-1"); s != "up" {
			return errors.New("tidy-1 is " + s)
		}
		return nil
	})
}
