package node_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keel-cloud/keel/adapters/agent"
	"github.com/keel-cloud/keel/adapters/hostlink"
	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/cmd/internal/node"
)

// Made with ssh-keygen (OpenSSH 9.2); the fingerprint is what
// `ssh-keygen -lf` printed for it.
const (
	ed25519Key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH0r2iHJKGMaAUABUbV1qDof3YMRyKZr3YlLWDJEH980 alice@laptop"
	ed25519FP  = "SHA256:Ktbt0mXjPtWXuT0sBf0jWLpmFDycXf60j3y3hq+qusM"
	rsa1024Key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC9jeECVHKa3Ponxyf+UDL9E11JMu+7+ZrEV2fKJj5hNAWAIaeKLzOkqe/7CYcIiGxd/IeyRmNyjd30Crg95y9RoRS/SrLA2Toe0ALzMKgaiEUYortQyUcu81hwEG8q8V7GLaYGLBEiaEN3E0uAQgLQGTHFxJY8YZR+pIIlca7jLQ== root@vm"
	dsaKey     = "ssh-dss AAAAB3NzaC1kc3MAAACBANs2dlFkJQjNjA8oHr7s0a/5Q4FdaKosPMSsf2zge52Qd+Zy6wk6v5X4QVk6Jf/KCwXD9oYuW7eGZO6fX8aO1mbOIOyvP8axLCOHSBkL03enaodYtRcKQUKGCieZE0fbJKfvh3BifklAtiXrq/3MG/qlKLfUYSHEhh7RJ065eUjpAAAAFQDdPyo5d7scE929prcg+L8vPpCPqQAAAIEA1ynrN6LsAeFbj83w1D+YxYRUIzgjRlq65i3DdqjILXkk24yiuCm3Ee9Qz/upz2UoVBZrbsljuXm94RI/TuGQAaqW+//cE0DL2s0Xsqn6wiuMPyY6pveqbkoxqcnDYFkXCRm2Z3mIUmYWRnG3jVjNnfoaO6rwKu+oH3skaSH77eQAAACBAJBYNW3EpoqyjSWyqi45tYBU+NjYMYuQ9dqFZpzS5CHFmDZqaBofaRHmWNaKIVOVt6aeVi1aNBuI27NtQwFgwB80SHFfRvsQAgv4sKWf11deC/vGR/Gwpk5hJhWWC93mJy9fb+R99batcQteER1hLHprT1gtk3wZJSaoqlUe0kWM root@vm"
)

// keypairBody is a keypair to create, as the JSON body of a call.
func keypairBody(name, key string) map[string]any {
	return map[string]any{"name": name, "public_key": key}
}

// A user brings a public key, creates a server with it, and logs in: the
// host got the key and the password login-info shows, the event log and
// the read model hold the password only sealed, and deleting the keypair
// leaves the server's key as it was.
func TestServerWithKeypairGetsKeyAndPassword(t *testing.T) {
	e := start(t, nil)
	e.seed()
	ctx := context.Background()
	kp, _, err := api.Create[api.Keypair](ctx, e.api, api.Keypairs, api.KeypairBody{Name: "alice", PublicKey: ed25519Key + "\n"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	if kp.PublicKey != ed25519Key || kp.Fingerprint != ed25519FP || kp.Type != "ssh-ed25519" {
		t.Fatalf("keypair %+v", kp)
	}
	acc, _, err := api.Create[api.Accepted](ctx, e.api, api.Servers,
		api.ServerBody{Name: "web-1", Flavor: "small", Image: "tiny", KeyName: "alice"}, api.Opts{MinSequence: e.minSeq})
	if err != nil {
		t.Fatal(err)
	}
	if acc.Server.KeyName == nil || *acc.Server.KeyName != "alice" {
		t.Fatalf("accepted server's key_name: %v", acc.Server.KeyName)
	}
	if op := e.waitOp(acc.OperationID, 20*time.Second); op.Status != "succeeded" {
		t.Fatalf("create %s: %v", op.Status, op.Error)
	}
	r := e.must(200, e.call("GET", "/v1/servers/web-1/login-info", nil))
	var li api.LoginInfo
	r.json(t, &li)
	if li.Username != "keel" || len(li.Password) != 20 || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("login info %+v, Cache-Control %q", li, r.Header.Get("Cache-Control"))
	}
	spec := e.spawned(acc.Server.ID)
	if !slices.Equal(spec.SSHKeys, []string{ed25519Key}) || string(spec.AdminPassword) != li.Password {
		t.Fatalf("the host was given keys %q and password %q; want alice's key and %q", spec.SSHKeys, spec.AdminPassword, li.Password)
	}
	del, err := api.Delete(ctx, e.api, api.Path(api.Keypairs, "alice"), api.Opts{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := api.Get[api.Server](ctx, e.api, api.Path(api.Servers, acc.Server.ID), api.Opts{MinSequence: del.Sequence})
	if err != nil || s.KeyName == nil || *s.KeyName != "alice" {
		t.Fatalf("after the keypair's delete the server shows key_name %v (%v)", s.KeyName, err)
	}
	if _, _, err := api.Get[api.Keypair](ctx, e.api, api.Path(api.Keypairs, "alice"), api.Opts{MinSequence: del.Sequence}); !api.IsStatus(err, http.StatusNotFound) {
		t.Fatalf("the deleted keypair: %v; want a 404", err)
	}
	e.expectNoPlaintext(li.Password)
	// The copy of the key in the server's own events is untouched.
	st, _, err := e.node.App.Servers.LoadLatest(ctx, acc.Server.ID)
	if err != nil || st.PublicKey != ed25519Key {
		t.Fatalf("server's key after the keypair's delete: %q (%v)", st.PublicKey, err)
	}
	// The key is kept private in the data dir, and a restart keeps it:
	// the password still opens.
	if fi, err := os.Stat(filepath.Join(e.cfg.DataDir, "secrets.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secrets key: %v, %v; want mode 0600", fi, err)
	}
	e.restart()
	var again api.LoginInfo
	e.must(200, e.call("GET", "/v1/servers/"+acc.Server.ID+"/login-info", nil)).json(t, &again)
	if again != li {
		t.Fatalf("after a restart login info is %+v, was %+v", again, li)
	}
}

// A secrets key named by the operator must exist: replicas share one key,
// and one of them making its own would seal passwords the others cannot
// open.
func TestAGivenSecretsKeyMustExist(t *testing.T) {
	cfg := node.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", DatabaseURL: "postgres://unused",
		SecretsKey: filepath.Join(t.TempDir(), "missing.key"), Log: slog.New(slog.DiscardHandler)}
	n, err := node.Start(context.Background(), cfg)
	if err == nil {
		n.Close()
		t.Fatal("keel serve started with a secrets key file that does not exist")
	}
	if !strings.Contains(err.Error(), "secrets key") {
		t.Fatalf("start failed with %v; want it to name the secrets key", err)
	}
	if _, err := os.Stat(cfg.SecretsKey); err == nil {
		t.Fatal("a missing secrets key named by the operator was created")
	}
}

// spawned returns what the simulated host running server id was given.
func (e *env) spawned(id string) agent.ServerSpec {
	e.t.Helper()
	for _, h := range e.node.Hosts {
		if s, ok := h.Spawned(id); ok {
			return s
		}
	}
	e.t.Fatalf("no host spawned server %s", id)
	return agent.ServerSpec{}
}

// expectNoPlaintext scans every commit in the log, every piece of work
// given to hosts and every row of the events table for a secret.
func (e *env) expectNoPlaintext(secret string) {
	e.t.Helper()
	ctx := context.Background()
	head, err := e.node.Store.LastSequence(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	for seq := uint64(1); seq <= head; seq++ {
		msg, err := e.node.Store.Stream().GetMsg(ctx, seq)
		if err != nil {
			e.t.Fatal(err)
		}
		if bytes.Contains(msg.Data, []byte(secret)) {
			e.t.Fatalf("commit %d (%s) holds the password in clear", seq, msg.Subject)
		}
	}
	for _, name := range []string{hostlink.WorkStream, hostlink.SimWorkStream} {
		st, err := e.node.Store.JS.Stream(ctx, name)
		if err != nil {
			e.t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
			msg, err := st.GetMsg(ctx, seq)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue // done and acknowledged
			}
			if err != nil {
				e.t.Fatal(err)
			}
			if bytes.Contains(msg.Data, []byte(secret)) {
				e.t.Fatalf("work %s #%d holds the password in clear", name, seq)
			}
		}
	}
	var n int
	err = e.node.Pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE strpos(envelope::text, $1) > 0`, secret).Scan(&n)
	if err != nil || n != 0 {
		e.t.Fatalf("%d rows of the events table hold the password in clear (%v)", n, err)
	}
}
