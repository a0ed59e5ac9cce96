package agent_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keel-cloud/keel/adapters/agent"
	"github.com/keel-cloud/keel/adapters/fake"
	"github.com/keel-cloud/keel/adapters/hostlink"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain/catalog"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/eventlog/memlog"
	"github.com/keel-cloud/keel/secrets"
)

const aliceKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH0r2iHJKGMaAUABUbV1qDof3YMRyKZr3YlLWDJEH980 alice@laptop"

func keyBox(t *testing.T) *secrets.Box {
	t.Helper()
	b, err := secrets.EnsureFile(filepath.Join(t.TempDir(), "secrets.key"))
	must(t, err)
	return b
}

// The driver gets the server's key and its password, sealed by keel serve
// to the host's own key and opened on the host; when keel serve cannot
// open it, or the host holds another seal key or none, the spawn fails
// and says why, rather than build a server nobody can log in to.
func TestAgentGivesTheDriverTheKeyAndThePassword(t *testing.T) {
	serveKey := keyBox(t)
	for _, c := range []struct {
		name   string
		opener hostlink.Opener
		seal   func(*hostlink.Credentials)
		reason string // "" : the build succeeds
	}{
		{"sealed to the host", serveKey, nil, ""},
		{"keel serve holds another secrets key", keyBox(t), nil, "keel serve could not open it"},
		{"keel serve holds no secrets key", nil, nil, "keel serve has no key"},
		{"the host holds another seal key", serveKey, otherSeal, "this host could not open it"},
		{"the host holds no seal key", serveKey, noSeal, "no seal key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			r := newRig(t, ctx, c.opener, c.seal)
			app, log := r.app, r.log
			app.Secrets = serveKey
			hosts, sims := fake.Fleet("mem", 1, fake.Knobs{}, 16, 16384, 100)
			defer run(t, ctx, &agent.Agent{Name: "mem", Link: r.link, Hosts: hosts, Log: slog.New(slog.DiscardHandler)})()

			sid := scheduledServer(ctx, t, app)
			if c.reason == "" {
				waitFor(t, app, sid, server.StatusActive)
				_, pw, err := app.LoginInfo(ctx, sid, "")
				must(t, err)
				spec, ok := sims[0].Spawned(sid)
				if !ok || !slices.Equal(spec.SSHKeys, []string{aliceKey}) || string(spec.AdminPassword) != pw {
					t.Fatalf("driver got keys %q, password %q; want alice's key and %q", spec.SSHKeys, spec.AdminPassword, pw)
				}
				return
			}
			reason := waitSpawnFailed(t, log, sid)
			if !strings.Contains(reason, c.reason) {
				t.Fatalf("spawn failed with %q; want it to say %q", reason, c.reason)
			}
			if _, ok := sims[0].Spawned(sid); ok {
				t.Fatal("the driver was asked to spawn without the password")
			}
		})
	}
}

// scheduledServer creates a server with alice's key and schedules it on mem-1.
func scheduledServer(ctx context.Context, t *testing.T, app *commands.App) string {
	t.Helper()
	m, flID, imID := seedCatalog(t, ctx, app)
	kp, err := app.CreateKeypair(ctx, "alice", aliceKey, m("keypair"))
	must(t, err)
	res, opID, err := app.CreateServer(ctx, commands.CreateServerRequest{Name: "vm", FlavorID: flID, ImageID: imID,
		KeypairID: string(kp.State.ID)}, m("create"))
	must(t, err)
	sid := string(res.State.ID)
	_, err = app.Servers.Handle(ctx, sid, server.Schedule{Host: "mem-1", Operation: opID, At: time.Now()}, m("schedule"))
	must(t, err)
	return sid
}

// waitSpawnFailed returns the reason of the server's first spawn_failed.
func waitSpawnFailed(t *testing.T, log *memlog.Log, sid string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		envs, err := log.Load(context.Background(), server.AggregateType, sid, 0)
		must(t, err)
		for _, env := range envs {
			evs, err := catalog.Decode(env)
			must(t, err)
			for _, ev := range evs {
				if f, ok := ev.(*server.SpawnFailed); ok {
					return f.Reason
				}
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no spawn_failed within 10s")
	return ""
}
