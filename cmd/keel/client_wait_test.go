package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keel-cloud/keel/adapters/fake"
	"github.com/keel-cloud/keel/adapters/httpapi"
	"github.com/keel-cloud/keel/adapters/postgres/pgtest"
	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/cmd/internal/node"
)

// memberNode runs a keel node (embedded NATS, a throwaway Postgres, fake
// hosts whose every call takes a while, so that a create has steps to
// follow) with a flavor and a public image, and returns its URL and the
// token of a member of project alpha.
func memberNode(t *testing.T) (base, token string) {
	t.Helper()
	ctx := context.Background()
	const adminPassword = "keel-test-admin-password"
	n, err := node.Start(ctx, node.Config{
		DataDir:       t.TempDir(),
		Listen:        "127.0.0.1:0",
		DatabaseURL:   pgtest.NewDatabase(t),
		FakeHosts:     2,
		FakeKnobs:     fake.Knobs{Latency: 1500 * time.Millisecond},
		AdminPassword: adminPassword,
		Limits:        httpapi.Limits{Rate: -1, LoginRate: -1, ProjectOperations: -1},
		Log:           slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(n.Close)
	admin, _, err := api.Login(ctx, api.New(n.URL), "admin", adminPassword, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.Create[api.Flavor](ctx, admin, api.Flavors, api.FlavorBody{Name: "small", VCPUs: 1, RAMMiB: 512, DiskGiB: 1}, api.Opts{}); err != nil {
		t.Fatal(err)
	}
	im, res, err := api.Create[api.Image](ctx, admin, api.Images, api.ImageBody{Name: "tiny", DiskFormat: "raw", Visibility: "public"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("keel"), 4096)
	up, err := admin.Do(ctx, api.Request{Method: http.MethodPut, Path: api.Path(api.Images, im.ID, "file"), Opts: api.Opts{MinSequence: res.Sequence},
		Raw: bytes.NewReader(data), RawType: "application/octet-stream", RawLength: int64(len(data))}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.Create[api.Project](ctx, admin, api.Projects, api.ProjectBody{Name: "alpha"}, api.Opts{}); err != nil {
		t.Fatal(err)
	}
	const pw = "alice-password-long-enough"
	if _, _, err := api.Create[api.User](ctx, admin, api.Users, api.UserBody{Name: "alice", Password: pw, Project: "alpha", Role: "member"}, api.Opts{}); err != nil {
		t.Fatal(err)
	}
	alice, tok, err := api.Login(ctx, api.New(n.URL), "alice", pw, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	// The create names the image: let the read model have its upload first.
	if _, _, err := api.Get[api.Image](ctx, alice, api.Path(api.Images, im.ID), api.Opts{MinSequence: up.Sequence}); err != nil {
		t.Fatal(err)
	}
	return n.URL, tok.Secret
}

// createAndWait runs `keel server create NAME --wait` as the member and
// checks what a user sees: the spawn done (and, with seeRunning, running
// before), the operation's end, then the server.
func createAndWait(t *testing.T, base, token, name string, seeRunning bool) {
	t.Helper()
	out, errOut, err := runCLI(t, base, "--token", token, "server", "create", name, "--flavor", "small", "--image", "tiny", "--wait", "--timeout", "2m")
	if err != nil {
		t.Fatalf("create --wait: %v\nout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	running := regexp.MustCompile(`(?m)^  spawn +running$`).FindStringIndex(out)
	done := regexp.MustCompile(`(?m)^  spawn +succeeded +\S`).FindStringIndex(out)
	if done == nil || (seeRunning && (running == nil || running[0] > done[0])) {
		t.Errorf("want the spawn step shown succeeded (running before: %v):\n%s", seeRunning, out)
	}
	if !regexp.MustCompile(`(?m)^operation \S+ succeeded in `).MatchString(out) || !regexp.MustCompile(`(?m)^STATUS +ACTIVE$`).MatchString(out) {
		t.Errorf("want the operation's end and the server ACTIVE:\n%s", out)
	}
}

// A member's --wait is woken by the operation's commits on the event
// stream: with the fallback reads pushed out of reach, the wait still
// shows each step and ends with the server (it would give up at
// --timeout if the stream did not carry the member's operation).
func TestWaitFollowsTheStreamAsAMember(t *testing.T) {
	defer func(d time.Duration) { waitFallback = d }(waitFallback)
	waitFallback = time.Hour
	base, token := memberNode(t)
	createAndWait(t, base, token, "web", true)
}

// Without a usable stream (a proxy that refuses it, or one that ends it
// at once), --wait falls back to reading the operation and still ends.
func TestWaitEndsWithoutTheStream(t *testing.T) {
	base, token := memberNode(t)
	target, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	for name, stream := range map[string]http.HandlerFunc{
		"refused": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte(`{"title":"Bad Gateway","status":502,"detail":"no streams through this proxy"}`))
		},
		"ended": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = w.Write([]byte("event: ready\ndata: {\"head\":1}\n\n"))
		},
	} {
		t.Run(name, func(t *testing.T) {
			proxy := httputil.NewSingleHostReverseProxy(target)
			var streams atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, "/events/stream") {
					streams.Add(1)
					stream(w, r)
					return
				}
				proxy.ServeHTTP(w, r)
			}))
			defer srv.Close()
			createAndWait(t, srv.URL, token, "web-"+name, false)
			if streams.Load() == 0 {
				t.Error("the wait never asked for the stream")
			}
		})
	}
}
