package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keel-cloud/keel/adapters/postgres/pgtest"
	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/cmd/internal/node"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/project"
)

// quotaInUse reads a project's quota use as its members see it.
func quotaInUse(t *testing.T, c *api.Client, projectRef string) map[string]int {
	t.Helper()
	q, _, err := api.Get[api.Quotas](context.Background(), c, api.Path(api.Projects, projectRef, "quotas"), api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, it := range q.Items {
		out[it.Resource] = it.InUse
	}
	return out
}

// A reservation whose server never came to be (what a crash between the
// reservation and the server's first commit leaves) is given back by the
// sweep after its grace; a late retry of that create is refused with a
// reason, and gives nothing back twice; the reservation of a real server
// is left alone.
func TestQuotaSweepGivesBackAbandonedReservations(t *testing.T) {
	e := start(t, func(c *node.Config) { c.QuotaGrace = 500 * time.Millisecond })
	ctx := context.Background()
	e.seed()
	pub, res, err := api.Create[api.Image](ctx, e.api, api.Images, api.ImageBody{Name: "pub", DiskFormat: "raw", Visibility: "public"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	seq := e.upload(pub.ID, []byte("bytes"), res.Sequence)
	alpha := e.addProject("alpha")
	alice := e.addUser("alice", "alpha", "member")
	if _, err := e.api.Do(ctx, api.Request{Method: "PUT", Path: api.Path(api.Projects, "alpha", "quotas"), Body: api.QuotasBody{Limits: map[string]int{"servers": 5}}}, nil); err != nil {
		t.Fatal(err)
	}
	real, _, err := api.Create[api.Accepted](ctx, alice.c, api.Servers, api.ServerBody{Name: "real", Flavor: "small", Image: "pub"}, api.Opts{MinSequence: seq})
	if err != nil {
		t.Fatal(err)
	}

	// The leftover of a crash: the create's reservation, made as
	// CreateServer makes it, and no server.
	cmdID := commands.NewID()
	sid := commands.DeriveID(cmdID, "server")
	reserve := commands.Meta{CommandID: cmdID + "/quota", Actor: domain.Actor{User: "alice", Project: alpha.ID}}
	if _, err := e.node.App.Projects.HandleBatched(ctx, alpha.ID, project.Reserve{Key: sid, Amounts: project.ServerAmounts(1, 512), At: time.Now()}, reserve); err != nil {
		t.Fatal(err)
	}
	if u := quotaInUse(t, alice.c, "alpha"); u["servers"] != 2 {
		t.Fatalf("in use with a leftover reservation: %v; want 2 servers", u)
	}
	eventually(t, 20*time.Second, func() error {
		if u := quotaInUse(t, alice.c, "alpha"); u["servers"] != 1 || u["vcpus"] != 1 || u["ram_mib"] != 512 {
			return fmt.Errorf("in use: %v; want the real server's only", u)
		}
		return nil
	})

	// The create, retried late with the same command id, is refused and
	// takes nothing more, nor gives anything back twice.
	flavors, _, err := api.Get[api.List[api.Flavor]](ctx, e.api, api.Flavors, api.Opts{})
	if err != nil || len(flavors.Items) != 1 {
		t.Fatalf("flavors: %v %v", flavors, err)
	}
	_, _, err = e.node.App.CreateServer(ctx, commands.CreateServerRequest{Name: "late", FlavorID: flavors.Items[0].ID, ImageID: pub.ID},
		commands.Meta{CommandID: cmdID, Actor: domain.Actor{User: "alice", Project: alpha.ID}})
	if domain.KindOf(err) != domain.Conflict || !strings.Contains(err.Error(), "new Idempotency-Key") {
		t.Fatalf("late retry of the abandoned create: %v; want a conflict that says to send it again with a new key", err)
	}
	if u := quotaInUse(t, alice.c, "alpha"); u["servers"] != 1 {
		t.Fatalf("in use after the late retry: %v; want 1 server", u)
	}
	// The real server keeps its reservation through further passes, and
	// its delete gives it back.
	time.Sleep(time.Second)
	if u := quotaInUse(t, alice.c, "alpha"); u["servers"] != 1 {
		t.Fatalf("in use after more sweeps: %v; want the real server's 1", u)
	}
	e.waitOp(e.act(real.Server.ID, "delete").OperationID, 30*time.Second)
	eventually(t, 10*time.Second, func() error {
		if u := quotaInUse(t, alice.c, "alpha"); u["servers"] != 0 {
			return fmt.Errorf("in use after the delete: %v", u)
		}
		return nil
	})
}

// 100 concurrent creates against a quota of 10 with a kill -9 of keel serve
// in the middle: every client retries with its Idempotency-Key until it
// gets an answer. Exactly 10 servers, 10 in use; after deleting them, none.
func TestQuotaHoldsAcrossKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a keel serve process")
	}
	bin := buildKeel(t)
	dataDir, dbURL, addr := t.TempDir(), pgtest.NewDatabase(t), freeAddr(t)
	p := serve(t, bin, dataDir, dbURL, addr)
	defer func() {
		if t.Failed() {
			t.Logf("keel serve output:\n%s", p.log.String())
		}
	}()
	ctx := context.Background()
	admin := p.client()
	seedOver(t, admin)
	pub, _, err := api.Create[api.Image](ctx, admin, api.Images, api.ImageBody{Name: "pub", DiskFormat: "raw", Visibility: "public"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	up, err := admin.Do(ctx, api.Request{Method: "PUT", Path: api.Path(api.Images, pub.ID, "file"),
		Raw: strings.NewReader("bytes"), RawType: "application/octet-stream", RawLength: 5}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.Create[api.Project](ctx, admin, api.Projects, api.ProjectBody{Name: "alpha"}, api.Opts{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Do(ctx, api.Request{Method: "PUT", Path: api.Path(api.Projects, "alpha", "quotas"), Body: api.QuotasBody{Limits: map[string]int{"servers": 10}}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.Create[api.User](ctx, admin, api.Users, api.UserBody{Name: "alice", Password: "alice-password-long-enough", Project: "alpha", Role: "member"}, api.Opts{}); err != nil {
		t.Fatal(err)
	}
	_, tok, err := api.Login(ctx, api.New(p.url), "alice", "alice-password-long-enough", "alpha")
	if err != nil {
		t.Fatal(err)
	}
	auth := "Authorization: Bearer " + tok.Secret
	minSeq := fmt.Sprintf("Keel-Min-Sequence: %d", up.Sequence)

	// Each client sends its create until it gets an answer, with the same
	// Idempotency-Key every time.
	type answer struct {
		code int
		id   string
		body string
	}
	var mu sync.Mutex
	answers := map[int]answer{}
	var wg sync.WaitGroup
	deadline := time.Now().Add(2 * time.Minute)
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 5 * time.Millisecond)
			for time.Now().Before(deadline) {
				code, body, err := post(p.url+"/v1/servers", map[string]any{"name": fmt.Sprintf("q-%d", i), "flavor": "small", "image": "pub"},
					minSeq, auth, fmt.Sprintf("Idempotency-Key: create-%d", i))
				if err != nil || code >= 500 {
					time.Sleep(200 * time.Millisecond)
					continue
				}
				a := answer{code: code, body: string(body)}
				if code == http.StatusAccepted {
					var acc api.Accepted
					if err := json.Unmarshal(body, &acc); err != nil {
						t.Errorf("create %d: %s: %v", i, body, err)
					}
					a.id = acc.Server.ID
				}
				mu.Lock()
				answers[i] = a
				mu.Unlock()
				return
			}
		}()
	}
	before := p.killAfter(t, 60*time.Second, &mu, 5, func() int { return len(answers) })
	t.Logf("%d of 100 creates answered before kill -9", before)
	p = serve(t, bin, dataDir, dbURL, addr)
	defer func() { _ = p.cmd.Process.Signal(syscall.SIGINT); _ = p.cmd.Wait() }()
	wg.Wait()
	if before == 100 {
		t.Fatalf("the kill should land mid-way; all 100 creates were answered before it")
	}

	ids := map[string]bool{}
	codes := map[int]int{}
	for i, a := range answers {
		codes[a.code]++
		switch {
		case a.code == http.StatusAccepted:
			ids[a.id] = true
		case a.code == http.StatusConflict && strings.Contains(a.body, "quota exceeded"):
		default:
			t.Errorf("create %d: %d %s; want 202, or 409 quota exceeded", i, a.code, a.body)
		}
	}
	if len(answers) != 100 || codes[http.StatusAccepted] != 10 || len(ids) != 10 {
		t.Fatalf("%d answers %v, %d distinct servers; want 100 answers, 10 accepted servers and 90 refused", len(answers), codes, len(ids))
	}
	alice := api.New(p.url).WithToken(tok.Secret)
	if u := quotaInUse(t, alice, "alpha"); u["servers"] != 10 {
		t.Fatalf("in use after the creates: %v; want 10 servers", u)
	}
	var servers api.List[api.Server]
	eventually(t, 60*time.Second, func() error {
		servers, _, err = api.Get[api.List[api.Server]](ctx, alice, api.Servers+"?limit=1000", api.Opts{})
		if err != nil {
			return err
		}
		active := 0
		for _, s := range servers.Items {
			if !ids[s.ID] {
				return fmt.Errorf("server %s (%s) was never acknowledged", s.ID, s.Name)
			}
			if s.Status == "ACTIVE" {
				active++
			}
		}
		if len(servers.Items) != 10 || active != 10 {
			return fmt.Errorf("%d servers listed, %d active; want 10 active", len(servers.Items), active)
		}
		return nil
	})
	for id := range ids {
		if code, body, err := post(p.url+"/v1/servers/"+id, nil, auth); err != nil || code != http.StatusAccepted {
			t.Fatalf("delete %s: %d %s %v", id, code, body, err)
		}
	}
	eventually(t, 60*time.Second, func() error {
		if u := quotaInUse(t, alice, "alpha"); u["servers"] != 0 || u["vcpus"] != 0 || u["ram_mib"] != 0 {
			return fmt.Errorf("in use after deleting every server: %v", u)
		}
		return nil
	})
}
