package node_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/keel-cloud/keel/adapters/agent"
	"github.com/keel-cloud/keel/adapters/fake"
	"github.com/keel-cloud/keel/adapters/hostlink"
	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/cmd/internal/node"
)

// A compute node joins with credentials of its own, issued through the
// API: given once (never kept under an Idempotency-Key, issuing again
// replaces them), they connect to the exposed NATS and the node builds the
// servers placed on it, with the password sealed to it, never in clear in
// the log or in its work.
func TestHostWithItsOwnCredentialsBuildsItsServers(t *testing.T) {
	e := start(t, func(c *node.Config) {
		c.FakeHosts, c.NATSListen, c.ConsoleTTL = 0, "127.0.0.1:-1", 500*time.Millisecond
	})
	e.seed()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	issue := func() *hostlink.Credentials {
		r := e.must(201, e.call("POST", api.HostCredentials, map[string]string{"host": "node-1"}, "Idempotency-Key", "same-key"))
		if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
			t.Fatalf("Cache-Control %q, want no-store", cc)
		}
		var out api.IssuedHostCredentials
		r.json(t, &out)
		c, err := hostlink.ParseCredentials([]byte(out.Credentials))
		if err != nil || out.Host != "node-1" || c.Host != "node-1" || c.Seal == nil {
			t.Fatalf("issued %+v: %+v, %v", out, c, err)
		}
		return c
	}
	old, creds := issue(), issue()
	if a, _, _ := old.Public(); func() bool { b, _, _ := creds.Public(); return a == b }() {
		t.Fatal("a retry with the same Idempotency-Key replayed the credentials")
	}
	for _, bad := range []string{"", "a\x01b", "3f0c8a52-4c3e-4c1a-9d55-0c8e1f2b7a10", strings.Repeat("x", 256)} {
		if r := e.call("POST", api.HostCredentials, map[string]string{"host": bad}); r.Status != 422 {
			t.Errorf("credentials for host %q: %d %s; want 422", bad, r.Status, r.Body)
		}
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := hostlink.Connect(e.node.NATSURL(), old, "node-1", quiet, nats.MaxReconnects(0)); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("replaced credentials connect: %v", err)
	}
	// This node runs no simulated hosts: the fleet's credentials are refused.
	fleet, err := hostlink.ReadCredentials(e.node.AgentCredentials())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hostlink.Connect(e.node.NATSURL(), fleet, "fleet", quiet, nats.MaxReconnects(0)); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("the fleet's credentials connect to a node with no simulated hosts: %v", err)
	}
	link, err := hostlink.Connect(e.node.NATSURL(), creds, "node-1", quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer link.Close()
	hosts, sims := fake.Fleet("node", 1, fake.Knobs{}, 16, 16384, 100)
	ag := &agent.Agent{Name: "node-1", Link: link, Hosts: hosts, HeartbeatEvery: 100 * time.Millisecond, Log: quiet}
	actx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ag.Run(actx) }()
	defer func() { stop(); <-done }()

	if _, _, err := api.Create[api.Keypair](ctx, e.api, api.Keypairs, api.KeypairBody{Name: "alice", PublicKey: ed25519Key}, api.Opts{}); err != nil {
		t.Fatal(err)
	}
	var acc api.Accepted
	eventually(t, 10*time.Second, func() error { // the host is up once its first heartbeat is heard
		var err error
		acc, _, err = api.Create[api.Accepted](ctx, e.api, api.Servers,
			api.ServerBody{Name: "vm", Flavor: "small", Image: "tiny", KeyName: "alice", TargetHost: "node-1"}, api.Opts{MinSequence: e.minSeq})
		if err != nil {
			return err
		}
		if op := e.waitOp(acc.OperationID, 20*time.Second); op.Status != "succeeded" {
			return errors.New("create " + op.Status)
		}
		return nil
	})
	var li api.LoginInfo
	e.must(200, e.call("GET", "/v1/servers/"+acc.Server.ID+"/login-info", nil)).json(t, &li)
	spec, ok := sims[0].Spawned(acc.Server.ID)
	if !ok || string(spec.AdminPassword) != li.Password || len(spec.SSHKeys) != 1 {
		t.Fatalf("node-1 spawned %v: keys %q, password %q; want alice's key and %q", ok, spec.SSHKeys, spec.AdminPassword, li.Password)
	}
	e.expectNoPlaintext(li.Password)

	// Console URLs open once, within their time: a used one and an expired
	// one are refused before anything reaches the host; a simulated host
	// has no console at all.
	consoleURL := func() string {
		rc, _, err := api.Get[api.RemoteConsole](ctx, e.api, api.Path(api.Servers, acc.Server.ID, "console"), api.Opts{})
		if err != nil {
			t.Fatal(err)
		}
		if time.Until(rc.ExpiresAt) > e.cfg.ConsoleTTL || !strings.HasPrefix(rc.URL, "ws://") {
			t.Fatalf("console %+v", rc)
		}
		return rc.URL
	}
	used := consoleURL()
	expectConsoleRefused(t, used, 503) // node-1 runs the fake driver: no display answers
	expectConsoleRefused(t, used, 403)
	expired := consoleURL()
	time.Sleep(e.cfg.ConsoleTTL + 100*time.Millisecond)
	expectConsoleRefused(t, expired, 403)
}

// A server on a simulated host has no graphical console.
func TestSimulatedHostsHaveNoConsole(t *testing.T) {
	e := start(t, nil)
	e.seed()
	acc, _ := e.createServer("vm")
	if op := e.waitOp(acc.OperationID, 20*time.Second); op.Status != "succeeded" {
		t.Fatalf("create: %+v", op)
	}
	var p api.Problem
	e.must(409, e.call("GET", "/v1/servers/"+acc.Server.ID+"/console", nil)).json(t, &p)
	if !strings.Contains(p.Detail, "simulated") {
		t.Fatalf("problem %+v", p)
	}
}

// A compromised or retired compute node's credentials are revoked through
// the API: its agent is disconnected at once and cannot come back, so its
// host goes down; a second revoke is a 404; credentials issued again
// connect. Removing a host revokes its credentials too.
func TestRevokedHostCredentialsTakeTheHostOff(t *testing.T) {
	e := start(t, func(c *node.Config) {
		c.FakeHosts, c.NATSListen, c.HeartbeatTimeout = 0, "127.0.0.1:-1", 2*time.Second
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	issue := func() *hostlink.Credentials {
		var out api.IssuedHostCredentials
		e.must(201, e.call("POST", api.HostCredentials, map[string]string{"host": "node-1"})).json(t, &out)
		c, err := hostlink.ParseCredentials([]byte(out.Credentials))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// runAgent runs node-1's agent with creds until the returned stop.
	runAgent := func(creds *hostlink.Credentials) (*hostlink.Client, func()) {
		link, err := hostlink.Connect(e.node.NATSURL(), creds, "node-1", quiet)
		if err != nil {
			t.Fatal(err)
		}
		hosts, _ := fake.Fleet("node", 1, fake.Knobs{}, 16, 16384, 100)
		ag := &agent.Agent{Name: "node-1", Link: link, Hosts: hosts, HeartbeatEvery: 100 * time.Millisecond, Log: quiet}
		actx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- ag.Run(actx) }()
		var once sync.Once
		return link, func() { once.Do(func() { stop(); <-done; link.Close() }) }
	}
	hostState := func(want string) func() error {
		return func() error {
			h, _, err := api.Get[api.Host](ctx, e.api, api.Path(api.Hosts, "node-1"), api.Opts{})
			if err != nil || h.State != want {
				return fmt.Errorf("host node-1: %+v %v; want state %s", h.State, err, want)
			}
			return nil
		}
	}
	creds := issue()
	link, stop := runAgent(creds)
	defer stop()
	eventually(t, 10*time.Second, hostState("up"))

	e.must(204, e.call("DELETE", api.HostCredentials+"/node-1", nil))
	eventually(t, 5*time.Second, func() error {
		if link.Conn().IsConnected() {
			return errors.New("the agent with revoked credentials is still connected")
		}
		return nil
	})
	eventually(t, 10*time.Second, hostState("down"))
	if _, err := hostlink.Connect(e.node.NATSURL(), creds, "node-1", quiet, nats.MaxReconnects(0)); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("revoked credentials connect: %v", err)
	}
	var p api.Problem
	e.must(404, e.call("DELETE", api.HostCredentials+"/node-1", nil)).json(t, &p)
	if !strings.Contains(p.Detail, "no credentials") {
		t.Fatalf("second revoke: %+v", p)
	}
	stop()

	// New credentials bring it back; removing the host revokes them.
	link2, stop2 := runAgent(issue())
	defer stop2()
	eventually(t, 10*time.Second, hostState("up"))
	e.must(204, e.call("DELETE", "/v1/hosts/node-1", nil))
	eventually(t, 5*time.Second, func() error {
		if link2.Conn().IsConnected() {
			return errors.New("the agent of a removed host is still connected")
		}
		return nil
	})
	e.must(404, e.call("DELETE", api.HostCredentials+"/node-1", nil))
}
