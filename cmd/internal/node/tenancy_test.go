package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keel-cloud/keel/adapters/fake"
	"github.com/keel-cloud/keel/adapters/httpapi"
	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/cmd/internal/node"
	"github.com/keel-cloud/keel/domain/user"
)

// tenant is a user of a project, logged in.
type tenant struct {
	name, project string // project id
	c             *api.Client
}

// addUser makes a user with a role in a project (by name) and logs them in.
func (e *env) addUser(name, projectName, role string) tenant {
	e.t.Helper()
	ctx := context.Background()
	pw := name + "-password-long-enough"
	if _, _, err := api.Create[api.User](ctx, e.api, api.Users, api.UserBody{Name: name, Password: pw, Project: projectName, Role: role}, api.Opts{}); err != nil {
		e.t.Fatalf("create user %s: %v", name, err)
	}
	c, tok, err := api.Login(ctx, api.New(e.node.URL), name, pw, projectName)
	if err != nil {
		e.t.Fatalf("log in as %s: %v", name, err)
	}
	return tenant{name: name, project: tok.ProjectID, c: c}
}

func (e *env) addProject(name string) api.Project {
	e.t.Helper()
	p, _, err := api.Create[api.Project](context.Background(), e.api, api.Projects, api.ProjectBody{Name: name}, api.Opts{})
	if err != nil {
		e.t.Fatalf("create project %s: %v", name, err)
	}
	return p
}

// status is the HTTP status of an answer or a problem (0 for another error).
func status(res *api.Response, err error) int {
	var p *api.Problem
	switch {
	case errors.As(err, &p):
		return p.Status
	case err != nil:
		return 0
	}
	return res.Status
}

// A request without a token, with a made-up one, with an expired or a
// revoked one gets 401; health, readiness and the OpenAPI document need none.
func TestRequestsNeedAValidToken(t *testing.T) {
	e := start(t, nil)
	ctx := context.Background()
	for _, path := range []string{"/healthz", "/readyz", "/openapi.json"} {
		e.must(http.StatusOK, e.call("GET", path, nil, "Authorization", ""))
	}
	for _, c := range []struct{ method, path, auth, want string }{
		{"GET", "/v1/servers", "", "authentication required"},
		{"POST", "/v1/flavors", "", "authentication required"},
		{"GET", "/v1/servers", "Bearer kt.not-a-token", "malformed token"},
		{"GET", "/v1/servers", "Bearer kt.6f1e0c43-5a7e-4b55-9d3e-2b8f4a1c7d10.secret", "invalid token"},
		{"GET", "/v1/servers", "Basic YWRtaW46YWRtaW4=", "Bearer"},
		{"GET", "/metrics", "", "authentication required"},
	} {
		r := e.call(c.method, c.path, map[string]any{}, "Authorization", c.auth)
		if r.Status != http.StatusUnauthorized || !strings.Contains(string(r.Body), c.want) || r.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s %s with %q: %d %s, want 401 mentioning %q with WWW-Authenticate", c.method, c.path, c.auth, r.Status, r.Body, c.want)
		}
	}
	// A wrong password says no more than a wrong user name.
	for _, login := range []api.TokenBody{{User: "admin", Password: "not-the-password"}, {User: "nobody", Password: "not-the-password"}} {
		r := e.call("POST", api.Tokens, login, "Authorization", "")
		if r.Status != http.StatusUnauthorized || !strings.Contains(string(r.Body), "wrong user name or password") {
			t.Errorf("login %s: %d %s", login.User, r.Status, r.Body)
		}
	}
	// A token that expires stops working when it does.
	short, _, err := api.Create[api.IssuedToken](ctx, e.api, api.Tokens, api.TokenBody{Name: "short", ExpiresIn: 1}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	sc := api.New(e.node.URL).WithToken(short.Secret)
	if _, res, err := api.Get[api.Whoami](ctx, sc, api.WhoamiPath, api.Opts{}); status(res, err) != http.StatusOK {
		t.Fatalf("fresh token: %v", err)
	}
	time.Sleep(time.Until(short.ExpiresAt) + 50*time.Millisecond)
	if _, res, err := api.Get[api.Whoami](ctx, sc, api.WhoamiPath, api.Opts{}); status(res, err) != http.StatusUnauthorized || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired token: %v", err)
	}
	// A revoked token stops at once; the admin's own keeps working.
	other, _, err := api.Create[api.IssuedToken](ctx, e.api, api.Tokens, api.TokenBody{Name: "revoked"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := api.Delete(ctx, e.api, api.Path(api.Tokens, other.ID), api.Opts{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, res, err := api.Get[api.Whoami](ctx, api.New(e.node.URL).WithToken(other.Secret), api.WhoamiPath, api.Opts{}); status(res, err) != http.StatusUnauthorized || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("revoked token: %v", err)
	}
	me, _, err := api.Get[api.Whoami](ctx, e.api, api.WhoamiPath, api.Opts{})
	if err != nil || me.UserName != "admin" || !me.CloudAdmin || me.Role != "admin" {
		t.Fatalf("whoami: %+v %v", me, err)
	}
	// The token list shows no secret.
	r := e.must(http.StatusOK, e.call("GET", api.Tokens, nil, "Keel-Min-Sequence", fmt.Sprint(revoked.Sequence)))
	if strings.Contains(string(r.Body), short.Secret) || strings.Contains(string(r.Body), "secret_sha256") || !strings.Contains(string(r.Body), other.ID) {
		t.Fatalf("token list: %s", r.Body)
	}
}

// Projects do not see each other: a member of B gets 404 for A's server,
// keypair and operation, by id, in lists, in the history and the live
// stream; names are unique per project, not globally.
func TestProjectsAreIsolated(t *testing.T) {
	e := start(t, nil)
	ctx := context.Background()
	e.seed()
	// The seeded image is the admin project's: make one every project boots.
	pub, res, err := api.Create[api.Image](ctx, e.api, api.Images, api.ImageBody{Name: "public-tiny", DiskFormat: "raw", Visibility: "public"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	e.minSeq = e.upload(pub.ID, []byte("public bytes"), res.Sequence)
	e.addProject("alpha")
	e.addProject("beta")
	alice, bob, carol := e.addUser("alice", "alpha", "member"), e.addUser("bob", "beta", "member"), e.addUser("carol", "alpha", "reader")

	// Both projects may use the same names.
	for _, u := range []tenant{alice, bob} {
		if _, _, err := api.Create[api.Keypair](ctx, u.c, api.Keypairs, api.KeypairBody{Name: "laptop", PublicKey: ed25519Key}, api.Opts{}); err != nil {
			t.Fatalf("%s: keypair laptop: %v", u.name, err)
		}
		if _, _, err := api.Create[api.ServerGroup](ctx, u.c, api.ServerGroups, api.GroupBody{Name: "web", Policy: "anti-affinity"}, api.Opts{}); err != nil {
			t.Fatalf("%s: group web: %v", u.name, err)
		}
	}
	// A project cannot boot another's private image; the public one it can.
	_, res, err = api.Create[api.Accepted](ctx, alice.c, api.Servers, api.ServerBody{Name: "web-1", Flavor: "small", Image: "tiny"}, api.Opts{MinSequence: e.minSeq})
	if status(res, err) != http.StatusUnprocessableEntity {
		t.Fatalf("alice booting the admin project's private image: %v", err)
	}
	acc, res, err := api.Create[api.Accepted](ctx, alice.c, api.Servers, api.ServerBody{Name: "web-1", Flavor: "small", Image: "public-tiny", KeyName: "laptop", ServerGroup: "web"}, api.Opts{MinSequence: e.minSeq})
	if err != nil {
		t.Fatalf("alice creates a server: %v", err)
	}
	if acc.Server.ProjectID == nil || *acc.Server.ProjectID != alice.project {
		t.Fatalf("server's project: %v, want %s", acc.Server.ProjectID, alice.project)
	}
	seq := res.Sequence
	sid, opID := acc.Server.ID, acc.OperationID
	after := api.Opts{MinSequence: seq}

	// Bob sees none of it.
	for _, path := range []string{api.Path(api.Servers, sid), api.Path(api.Servers, "web-1"), api.Path(api.Operations, opID),
		api.Path(api.Servers, sid, "login-info"), api.Path(api.Servers, sid, "console-log")} {
		if _, res, err := api.Get[json.RawMessage](ctx, bob.c, path, after); status(res, err) != http.StatusNotFound {
			t.Errorf("bob GET %s: %d %v, want 404", path, status(res, err), err)
		}
	}
	for _, action := range []string{"stop", "reboot"} {
		if _, err := bob.c.Do(ctx, api.Request{Method: "POST", Path: api.Path(api.Servers, sid, action)}, nil); status(nil, err) != http.StatusNotFound {
			t.Errorf("bob %s alice's server: %v, want 404", action, err)
		}
	}
	if _, err := api.Delete(ctx, bob.c, api.Path(api.Servers, sid), api.Opts{}, nil); status(nil, err) != http.StatusNotFound {
		t.Errorf("bob deletes alice's server: %v, want 404", err)
	}
	servers, _, err := api.Get[api.List[api.Server]](ctx, bob.c, api.Servers, after)
	if err != nil || len(servers.Items) != 0 {
		t.Errorf("bob's server list: %+v %v", servers.Items, err)
	}
	hist, _, err := api.Get[api.EventPage](ctx, bob.c, api.Events+"?aggregate_id="+sid, after)
	if err != nil || len(hist.Items) != 0 {
		t.Errorf("bob reads alice's server history: %d commits, %v", len(hist.Items), err)
	}
	if _, res, err := api.Get[json.RawMessage](ctx, bob.c, api.Servers+"?all_projects=true", after); status(res, err) != http.StatusForbidden {
		t.Errorf("bob asks for all projects: %v, want 403", err)
	}
	// Bob's live stream carries his own commits, never alice's.
	stream, cancel := e.openStream(bob.c, "?since=0")
	defer cancel()
	_, res, err = api.Create[api.Keypair](ctx, bob.c, api.Keypairs, api.KeypairBody{Name: "desk", PublicKey: ed25519Key}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	after = api.Opts{MinSequence: res.Sequence}
	for _, c := range stream.until(t, func(c api.Commit) bool {
		return c.AggregateType == "keypair" && strings.Contains(string(c.Events[0].Data), `"desk"`)
	}) {
		if c.Project != bob.project {
			t.Errorf("bob's stream carried commit %d of project %q (%s %s)", c.Sequence, c.Project, c.AggregateType, c.AggregateID)
		}
	}

	// Alice and carol see it; carol, a reader, cannot change it.
	for _, u := range []tenant{alice, carol} {
		if s, _, err := api.Get[api.Server](ctx, u.c, api.Path(api.Servers, "web-1"), after); err != nil || s.ID != sid {
			t.Errorf("%s reads the server: %v", u.name, err)
		}
		hist, _, err := api.Get[api.EventPage](ctx, u.c, api.Events+"?aggregate_id="+sid, after)
		if err != nil || len(hist.Items) == 0 {
			t.Errorf("%s reads the server's history: %d commits, %v", u.name, len(hist.Items), err)
		}
	}
	if _, err := api.Delete(ctx, carol.c, api.Path(api.Servers, sid), api.Opts{}, nil); status(nil, err) != http.StatusForbidden ||
		!strings.Contains(err.Error(), "needs the member role") {
		t.Errorf("carol (reader) deletes: %v, want 403", err)
	}
	// The operation's failure detail is for cloud admins.
	op := e.waitOp(opID, 20*time.Second)
	if op.Status != "succeeded" || op.ProjectID == nil || *op.ProjectID != alice.project {
		t.Fatalf("operation: %+v", op)
	}
	// The cloud admin sees both projects with all_projects, and only its own without.
	mine, _, err := api.Get[api.List[api.Keypair]](ctx, e.api, api.Keypairs, after)
	if err != nil || len(mine.Items) != 0 {
		t.Errorf("admin's own keypairs: %+v %v", mine.Items, err)
	}
	every, _, err := api.Get[api.List[api.Keypair]](ctx, e.api, api.Keypairs+"?all_projects=true", after)
	if err != nil || len(every.Items) != 3 {
		t.Errorf("all keypairs: %d %v, want 3", len(every.Items), err)
	}
	// Alice deletes her server; the project cannot go while it holds things.
	if _, err := api.Delete(ctx, e.api, api.Path(api.Projects, "alpha"), api.Opts{}, nil); status(nil, err) != http.StatusConflict ||
		!strings.Contains(err.Error(), "still owns") {
		t.Errorf("delete a project that owns things: %v, want 409", err)
	}
}

// eventStream reads a live stream.
type eventStream struct {
	commits chan api.Commit
}

// openStream follows /v1/events/stream with query as the client c.
func (e *env) openStream(c *api.Client, query string) (*eventStream, context.CancelFunc) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	res, err := c.Stream(ctx, api.Events+"/stream"+query, api.Opts{})
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	s := &eventStream{commits: make(chan api.Commit, 1000)}
	go func() {
		defer res.Body.Close()
		defer close(s.commits)
		buf := make([]byte, 0, 64<<10)
		chunk := make([]byte, 32<<10)
		for {
			n, err := res.Body.Read(chunk)
			buf = append(buf, chunk[:n]...)
			for {
				i := strings.Index(string(buf), "\n\n")
				if i < 0 {
					break
				}
				msg := string(buf[:i])
				buf = buf[i+2:]
				if !strings.Contains(msg, "event: commit") {
					continue
				}
				for _, line := range strings.Split(msg, "\n") {
					if data, ok := strings.CutPrefix(line, "data: "); ok {
						var c api.Commit
						if json.Unmarshal([]byte(data), &c) == nil {
							s.commits <- c
						}
					}
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return s, cancel
}

// until returns the commits up to the first that matches, failing after 10 s.
func (s *eventStream) until(t *testing.T, match func(api.Commit) bool) []api.Commit {
	t.Helper()
	var out []api.Commit
	timeout := time.After(10 * time.Second)
	for {
		select {
		case c, ok := <-s.commits:
			if !ok {
				t.Fatal("the stream ended")
			}
			out = append(out, c)
			if match(c) {
				return out
			}
		case <-timeout:
			t.Fatalf("no matching commit within 10 s (%d others)", len(out))
		}
	}
}

// The policy matrix, against the running API: every operation of the
// OpenAPI document, as no one, a reader, a member and a project admin of
// project alpha, and a cloud admin, on alpha's resources and on beta's.
// Refused roles get 403 (no token: 401); allowed ones are not refused,
// and on another project's resource get 404.
func TestPolicyMatrix(t *testing.T) {
	e := start(t, nil)
	ctx := context.Background()
	e.seed()
	e.addProject("alpha")
	e.addProject("beta")
	callers := []struct {
		name string
		c    *api.Client
	}{
		{"anonymous", api.New(e.node.URL)},
		{"reader", e.addUser("rita", "alpha", "reader").c},
		{"member", e.addUser("max", "alpha", "member").c},
		{"project admin", e.addUser("ada", "alpha", "admin").c},
	}
	betaUser := e.addUser("bea", "beta", "admin")
	// Resources of each project: a keypair, a group, an image, a server and its operation.
	type fixture struct {
		server, op, keypair, group, image, project, user, token string
		network, subnet, port, secgroup, rule                   string
		router, floatingIP                                      string
	}
	// The cloud's external network, where every project's floating IPs
	// come from.
	ext, res, err := api.Create[api.Network](ctx, e.api, api.Networks, api.NetworkBody{Name: "public", Kind: "flat", PhysicalNetwork: "physnet1", External: true}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.Create[api.Subnet](ctx, e.api, api.Subnets, api.SubnetBody{Network: ext.ID, CIDR: "203.0.113.0/24"}, api.Opts{MinSequence: res.Sequence}); err != nil {
		t.Fatal(err)
	}
	make_ := func(u *api.Client, project, user string) fixture {
		kp, _, err := api.Create[api.Keypair](ctx, u, api.Keypairs, api.KeypairBody{Name: "k-" + project, PublicKey: ed25519Key}, api.Opts{})
		if err != nil {
			t.Fatal(err)
		}
		g, _, err := api.Create[api.ServerGroup](ctx, u, api.ServerGroups, api.GroupBody{Name: "g-" + project, Policy: "affinity"}, api.Opts{})
		if err != nil {
			t.Fatal(err)
		}
		im, _, err := api.Create[api.Image](ctx, u, api.Images, api.ImageBody{Name: "i-" + project, DiskFormat: "raw"}, api.Opts{})
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := api.Create[api.IssuedToken](ctx, u, api.Tokens, api.TokenBody{Name: "spare"}, api.Opts{})
		if err != nil {
			t.Fatal(err)
		}
		pub, res, err := api.Create[api.Image](ctx, e.api, api.Images, api.ImageBody{Name: "pub-" + project, DiskFormat: "raw", Visibility: "public"}, api.Opts{})
		if err != nil {
			t.Fatal(err)
		}
		seq := e.upload(pub.ID, []byte("x"), res.Sequence)
		acc, _, err := api.Create[api.Accepted](ctx, u, api.Servers, api.ServerBody{Name: "s-" + project, Flavor: "small", Image: pub.ID}, api.Opts{MinSequence: seq})
		if err != nil {
			t.Fatal(err)
		}
		e.waitOp(acc.OperationID, 20*time.Second)
		f := fixture{server: acc.Server.ID, op: acc.OperationID, keypair: kp.ID, group: g.ID, image: im.ID, project: project, user: user, token: tok.ID}
		f.network, f.subnet, f.port, f.secgroup, f.rule = networkFixture(t, u, project)
		f.router, f.floatingIP = routerFixture(t, u, project, ext.ID)
		return f
	}
	// The users the membership and user calls act on are none of the callers:
	// a call that takes their role away must not end a caller's token.
	e.addUser("mo", "alpha", "member")
	e.addUser("bo", "beta", "member")
	own, other := make_(callers[3].c, "alpha", "mo"), make_(betaUser.c, "beta", "bo")
	callers = append(callers, struct {
		name string
		c    *api.Client
	}{"cloud admin", e.api})

	doc := e.must(http.StatusOK, e.call("GET", "/openapi.json", nil))
	var spec struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(doc.Body, &spec); err != nil {
		t.Fatal(err)
	}
	hostName := e.hosts()[0].Name
	// fill puts a resource of f in each path parameter; scoped says the
	// path names a project's resource (a cross-project call must be 404).
	fill := func(path string, f fixture) (string, bool) {
		scoped := false
		sub := func(param, v string, s bool) {
			if strings.Contains(path, param) {
				path = strings.Replace(path, param, v, 1)
				scoped = scoped || s
			}
		}
		switch {
		case strings.HasPrefix(path, "/v1/servers/"):
			sub("{id}", f.server, true)
			sub("{port_id}", f.port, false)
		case strings.HasPrefix(path, "/v1/keypairs/"):
			sub("{id}", f.keypair, true)
		case strings.HasPrefix(path, "/v1/server-groups/"):
			sub("{id}", f.group, true)
		case strings.HasPrefix(path, "/v1/images/"):
			sub("{id}", f.image, true)
		case strings.HasPrefix(path, "/v1/operations/"):
			sub("{id}", f.op, true)
		case strings.HasPrefix(path, api.Networks+"/"):
			sub("{id}", f.network, true)
		case strings.HasPrefix(path, api.Subnets+"/"):
			sub("{id}", f.subnet, true)
		case strings.HasPrefix(path, api.Ports+"/"):
			sub("{id}", f.port, true)
		case strings.HasPrefix(path, api.Routers+"/"):
			sub("{id}", f.router, true)
			sub("{subnet_id}", f.subnet, true)
		case strings.HasPrefix(path, api.FloatingIPs+"/"):
			sub("{id}", f.floatingIP, true)
		case strings.HasPrefix(path, api.SecurityGroups+"/"):
			sub("{id}", f.secgroup, true)
			sub("{rule_id}", f.rule, true)
		case strings.HasPrefix(path, "/v1/projects/"):
			sub("{id}", f.project, true)
			sub("{user}", f.user, false)
		case strings.HasPrefix(path, "/v1/users/"):
			sub("{id}", f.user, true)
		case strings.HasPrefix(path, "/v1/tokens/"):
			sub("{id}", f.token, true)
		case strings.HasPrefix(path, "/v1/hosts/"):
			sub("{id}", hostName, false)
		case strings.HasPrefix(path, "/v1/projections/"):
			sub("{name}", "servers", false)
		}
		sub("{id}", "00000000-0000-4000-8000-000000000000", false)
		sub("{host}", hostName, false)
		sub("{subscription}", "saga-servers-v1", false)
		sub("{seq}", "1", false)
		return path, scoped
	}
	type call struct{ method, path, op string }
	var calls []call
	for path, ops := range spec.Paths {
		for method, op := range ops {
			calls = append(calls, call{strings.ToUpper(method), path, op.OperationID})
		}
	}
	// Destructive calls last, so that they do not take away what the others use.
	slices.SortFunc(calls, func(a, b call) int {
		da, db := a.method == "DELETE", b.method == "DELETE"
		switch {
		case da != db && da:
			return 1
		case da != db:
			return -1
		}
		return strings.Compare(a.op+a.method, b.op+b.method)
	})
	tested := 0
	for _, cl := range calls {
		rule, ok := httpapi.Policy[cl.op]
		if !ok {
			t.Errorf("%s has no policy", cl.op)
			continue
		}
		for _, who := range callers {
			for _, target := range []fixture{other, own} {
				path, scoped := fill(cl.path, target)
				if target == other && !scoped {
					continue // nothing of another project in the path
				}
				got := send(ctx, who.c, cl.method, path, bodies[cl.op])
				tested++
				role := map[string]string{"reader": "reader", "member": "member", "project admin": "admin"}[who.name]
				allowed := httpapi.Allowed(rule, who.name != "anonymous", who.name == "cloud admin", user.Role(role))
				var want string
				switch {
				case who.name == "anonymous" && !allowed:
					want = "401"
				case !allowed:
					want = "403"
				case target == other && who.name != "cloud admin":
					want = "404"
				default:
					want = "not 401 or 403"
				}
				ok := (want == "401" && got == 401) || (want == "403" && got == 403) || (want == "404" && got == 404) ||
					(want == "not 401 or 403" && got != 401 && got != 403 && got != 0)
				if cl.op == "create-token" && who.name == "anonymous" {
					ok = got == 401 // a login with no password: refused as a login
				}
				if !ok {
					t.Errorf("%s %s (%s, %s) as %s on %s's: %d, want %s", cl.method, path, cl.op, rule, who.name, target.project, got, want)
				}
			}
		}
	}
	if tested < 250 {
		t.Fatalf("only %d calls tested", tested)
	}
	t.Logf("%d calls of %d operations tested", tested, len(calls))
}

// bodies are the valid bodies of calls on a project's resource whose
// handler, not the body's validation, must answer for another project.
var bodies = map[string]string{
	"set-member":                 `{"role": "reader"}`,
	"set-user-password":          `{"password": "a-new-password-long-enough", "current_password": "wrong"}`,
	"create-security-group-rule": `{"direction": "ingress", "protocol": "tcp", "port_min": 8080, "port_max": 8080}`,
	"add-router-interface":       `{"subnet": "00000000-0000-4000-8000-000000000000"}`,
	"set-router-gateway":         `{"network": "00000000-0000-4000-8000-000000000000"}`,
	"associate-floating-ip":      `{"port": "00000000-0000-4000-8000-000000000000"}`,
	"attach-server-interface":    `{"network": "n-alpha"}`,
	"set-port-security-groups":   `{"security_groups": []}`,
}

// routerFixture makes a router and a floating IP of the external network
// ext as u, and returns their ids.
func routerFixture(t *testing.T, u *api.Client, project, ext string) (router, floatingIP string) {
	t.Helper()
	ctx := context.Background()
	r, _, err := api.Create[api.Router](ctx, u, api.Routers, api.RouterBody{Name: "r-" + project}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	f, _, err := api.Create[api.FloatingIP](ctx, u, api.FloatingIPs, api.FloatingIPBody{Network: ext}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	return r.ID, f.ID
}

// networkFixture makes a network, a subnet, a port and a security group
// with a rule as u, and returns their ids.
func networkFixture(t *testing.T, u *api.Client, project string) (network, subnet, port, group, rule string) {
	t.Helper()
	ctx := context.Background()
	n, res, err := api.Create[api.Network](ctx, u, api.Networks, api.NetworkBody{Name: "n-" + project}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := api.Create[api.Subnet](ctx, u, api.Subnets, api.SubnetBody{Network: n.ID, CIDR: "10.0.0.0/24"}, api.Opts{MinSequence: res.Sequence})
	if err != nil {
		t.Fatal(err)
	}
	sg, res, err := api.Create[api.SecurityGroup](ctx, u, api.SecurityGroups, api.SecurityGroupBody{Name: "sg-" + project}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := api.Create[api.SecurityGroupRule](ctx, u, api.Path(api.SecurityGroups, sg.ID, "rules"), api.SecurityGroupRuleBody{Direction: "ingress", Protocol: "icmp"}, api.Opts{MinSequence: res.Sequence})
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := api.Create[api.Port](ctx, u, api.Ports, api.PortBody{Network: n.ID, SecurityGroups: []string{sg.ID}}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	return n.ID, s.ID, p.ID, sg.ID, r.ID
}

// send makes one call with body, or an empty JSON body (validation comes
// after the policy), and returns its status; a stream is closed after its
// headers.
func send(ctx context.Context, c *api.Client, method, path, body string) int {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if body == "" {
		body = "{}"
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, strings.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	if strings.HasSuffix(path, "/file") {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer res.Body.Close()
	if !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		_, _ = io.Copy(io.Discard, res.Body)
	}
	return res.StatusCode
}

// Users manage themselves, and project admins their project: a member
// revokes their own token and changes their own password; a project admin
// gives and takes roles in their project and no other; a user deleted, or
// whose role goes, loses their tokens at once.
func TestUsersAndProjectAdminsManageTheirOwn(t *testing.T) {
	e := start(t, nil)
	ctx := context.Background()
	e.addProject("alpha")
	e.addProject("beta")
	ada, alice := e.addUser("ada", "alpha", "admin"), e.addUser("alice", "alpha", "member")
	e.addUser("bob", "beta", "member")

	// Alice's second token, revoked by herself.
	spare, _, err := api.Create[api.IssuedToken](ctx, alice.c, api.Tokens, api.TokenBody{Name: "script", ReadOnly: true}, api.Opts{})
	if err != nil || !spare.ReadOnly || spare.ProjectID != alice.project {
		t.Fatalf("alice issues a token: %+v %v", spare, err)
	}
	ro := api.New(e.node.URL).WithToken(spare.Secret)
	if _, res, err := api.Create[api.Keypair](ctx, ro, api.Keypairs, api.KeypairBody{Name: "k", PublicKey: ed25519Key}, api.Opts{}); status(res, err) != http.StatusForbidden ||
		!strings.Contains(err.Error(), "read-only") {
		t.Fatalf("a read-only token writes: %v", err)
	}
	if _, err := api.Delete(ctx, ada.c, api.Path(api.Tokens, spare.ID), api.Opts{}, nil); status(nil, err) != http.StatusNotFound {
		t.Fatalf("ada revokes alice's token: %v, want 404", err)
	}
	if _, err := api.Delete(ctx, alice.c, api.Path(api.Tokens, spare.ID), api.Opts{}, nil); err != nil {
		t.Fatalf("alice revokes her own token: %v", err)
	}
	if _, res, err := api.Get[api.Whoami](ctx, ro, api.WhoamiPath, api.Opts{}); status(res, err) != http.StatusUnauthorized {
		t.Fatalf("the revoked token still works: %v", err)
	}

	// Alice's password: hers to change, knowing the present one.
	pw := func(current string) error {
		_, err := alice.c.Do(ctx, api.Request{Method: "PUT", Path: api.Path(api.Users, "alice", "password"),
			Body: api.PasswordBody{Current: current, Password: "alice-second-password"}}, nil)
		return err
	}
	if err := pw("wrong"); status(nil, err) != http.StatusForbidden {
		t.Fatalf("a password change with a wrong current password: %v, want 403", err)
	}
	if err := pw("alice-password-long-enough"); err != nil {
		t.Fatalf("alice changes her password: %v", err)
	}
	if _, _, err := api.Login(ctx, api.New(e.node.URL), "alice", "alice-second-password", ""); err != nil {
		t.Fatalf("login with the new password: %v", err)
	}
	if _, _, err := api.Login(ctx, api.New(e.node.URL), "alice", "alice-password-long-enough", ""); status(nil, err) != http.StatusUnauthorized {
		t.Fatalf("login with the old password: %v", err)
	}
	if _, err := ada.c.Do(ctx, api.Request{Method: "PUT", Path: api.Path(api.Users, "alice", "password"),
		Body: api.PasswordBody{Password: "ada-chose-this-one"}}, nil); status(nil, err) != http.StatusNotFound {
		t.Fatalf("ada sets alice's password: %v, want 404", err)
	}

	// Ada manages alpha's members, and not beta's.
	grant := func(c *api.Client, project, user, role string) error {
		_, err := c.Do(ctx, api.Request{Method: "PUT", Path: api.Path(api.Projects, project, "members", user), Body: api.MemberBody{Role: role}}, nil)
		return err
	}
	if err := grant(ada.c, "alpha", "bob", "reader"); err != nil {
		t.Fatalf("ada gives bob a role in alpha: %v", err)
	}
	bobAlpha, _, err := api.Login(ctx, api.New(e.node.URL), "bob", "bob-password-long-enough", "alpha")
	if err != nil {
		t.Fatalf("bob logs in to alpha: %v", err)
	}
	if me, _, err := api.Get[api.Whoami](ctx, bobAlpha, api.WhoamiPath, api.Opts{}); err != nil || me.Role != "reader" || me.ProjectID != alice.project {
		t.Fatalf("bob in alpha: %+v %v", me, err)
	}
	if err := grant(ada.c, "beta", "alice", "admin"); status(nil, err) != http.StatusNotFound {
		t.Fatalf("ada gives a role in beta: %v, want 404", err)
	}
	if err := grant(alice.c, "alpha", "bob", "admin"); status(nil, err) != http.StatusForbidden {
		t.Fatalf("alice (member) gives a role: %v, want 403", err)
	}
	// Taking bob's role away ends his alpha token at once; his beta one lives.
	if _, err := api.Delete(ctx, ada.c, api.Path(api.Projects, "alpha", "members", "bob"), api.Opts{}, nil); err != nil {
		t.Fatalf("ada takes bob's role: %v", err)
	}
	if _, res, err := api.Get[api.Whoami](ctx, bobAlpha, api.WhoamiPath, api.Opts{}); status(res, err) != http.StatusUnauthorized {
		t.Fatalf("bob's alpha token after his role went: %v", err)
	}
	// A deleted user's tokens stop; their name is free again.
	if _, err := api.Delete(ctx, e.api, api.Path(api.Users, "alice"), api.Opts{}, nil); err != nil {
		t.Fatal(err)
	}
	if _, res, err := api.Get[api.Whoami](ctx, alice.c, api.WhoamiPath, api.Opts{}); status(res, err) != http.StatusUnauthorized {
		t.Fatalf("a deleted user's token: %v", err)
	}
	e.addUser("alice", "beta", "reader")
	// The bootstrap admin stays, and keeps its role.
	if _, err := api.Delete(ctx, e.api, api.Path(api.Users, "admin"), api.Opts{}, nil); status(nil, err) != http.StatusConflict {
		t.Fatalf("delete the admin user: %v, want 409", err)
	}
	if _, err := api.Delete(ctx, e.api, api.Path(api.Projects, "admin"), api.Opts{}, nil); status(nil, err) != http.StatusConflict {
		t.Fatalf("delete the admin project: %v, want 409", err)
	}
}

// One token in a burst of 10,000 requests gets 429s with Retry-After past
// its rate, while another token's requests are answered all along.
func TestRateLimitsKeepOtherTokensResponsive(t *testing.T) {
	e := start(t, func(c *node.Config) { c.FakeHosts = 0; c.Limits = httpapi.Limits{Rate: 50, Burst: 100, LoginRate: -1} })
	ctx := context.Background()
	e.addProject("alpha")
	other := e.addUser("olga", "alpha", "reader")
	hot := api.New(e.node.URL).WithToken(e.token)
	hot.HTTP = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

	var mu sync.Mutex
	codes := map[int]int{}
	retryAfter := true
	done := make(chan struct{})
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				res, err := hot.Do(ctx, api.Request{Method: "GET", Path: api.Flavors}, nil)
				code := status(res, err)
				mu.Lock()
				codes[code]++
				var p *api.Problem
				if code == http.StatusTooManyRequests && (!errors.As(err, &p) || p.RetryAfter == "") {
					retryAfter = false
				}
				mu.Unlock()
			}
		}()
	}
	go func() {
		for i := 0; i < 10_000; i++ {
			next <- i
		}
		close(next)
		wg.Wait()
		close(done)
	}()
	// Meanwhile another token is answered, and promptly.
	var slowest time.Duration
	answered := 0
	for busy := true; busy; {
		select {
		case <-done:
			busy = false
		case <-time.After(50 * time.Millisecond):
			start := time.Now()
			if _, _, err := api.Get[api.Whoami](ctx, other.c, api.WhoamiPath, api.Opts{}); err != nil {
				t.Fatalf("the other token during the burst: %v", err)
			}
			answered++
			slowest = max(slowest, time.Since(start))
		}
	}
	t.Logf("burst: %v; the other token answered %d times, slowest %s", codes, answered, slowest)
	if codes[http.StatusOK] < 100 || codes[http.StatusTooManyRequests] < 5_000 || codes[http.StatusOK]+codes[http.StatusTooManyRequests] != 10_000 {
		t.Fatalf("burst answers %v: want the burst and the rate answered, the rest 429", codes)
	}
	if !retryAfter {
		t.Fatal("a 429 came without Retry-After")
	}
	if answered == 0 || slowest > 2*time.Second {
		t.Fatalf("the other token was answered %d times, slowest %s", answered, slowest)
	}
	// The limit is per token: after its wait the hot token works again.
	time.Sleep(time.Second)
	if _, _, err := api.Get[api.List[api.Flavor]](ctx, hot, api.Flavors, api.Opts{}); err != nil {
		t.Fatalf("the hot token after a second: %v", err)
	}
}

// Guessing a password is throttled: past five wrong ones for a name, the
// next attempt, even with the right password, waits (429, Retry-After),
// and the wait grows; a success resets it. Logins from one address are
// limited too.
func TestLoginsAreThrottled(t *testing.T) {
	e := start(t, func(c *node.Config) {
		c.FakeHosts = 0
		c.Limits = httpapi.Limits{Rate: -1, LoginRate: 1000, LoginBurst: 1000}
	})
	ctx := context.Background()
	e.addProject("alpha")
	e.addUser("vic", "alpha", "member")
	login := func(pw string) error {
		_, _, err := api.Login(ctx, api.New(e.node.URL), "vic", pw, "")
		return err
	}
	for i := 1; i <= 6; i++ {
		if err := login("guess-number-" + fmt.Sprint(i)); status(nil, err) != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %v, want 401", i, err)
		}
	}
	err := login("vic-password-long-enough")
	var p *api.Problem
	if !errors.As(err, &p) || p.Status != http.StatusTooManyRequests || p.RetryAfter == "" || !strings.Contains(p.Detail, "too many wrong passwords") {
		t.Fatalf("the right password right after six wrong ones: %v, want 429 with Retry-After", err)
	}
	time.Sleep(1100 * time.Millisecond)
	if err := login("vic-password-long-enough"); err != nil {
		t.Fatalf("after the wait: %v", err)
	}
	// Another name is not held back by vic's failures.
	if _, _, err := api.Login(ctx, api.New(e.node.URL), "admin", adminPassword, ""); err != nil {
		t.Fatal(err)
	}
}

// Password logins from one address are limited before any password is
// checked.
func TestLoginsPerAddressAreLimited(t *testing.T) {
	e := start(t, func(c *node.Config) {
		c.FakeHosts = 0
		c.Limits = httpapi.Limits{Rate: -1, LoginRate: 1, LoginBurst: 3}
	})
	ctx := context.Background()
	limited := 0
	for i := 0; i < 10; i++ {
		_, _, err := api.Login(ctx, api.New(e.node.URL), "nobody-"+fmt.Sprint(i), "whatever-it-is", "")
		switch status(nil, err) {
		case http.StatusUnauthorized:
		case http.StatusTooManyRequests:
			limited++
		default:
			t.Fatalf("login %d: %v", i, err)
		}
	}
	if limited < 5 {
		t.Fatalf("%d of 10 quick logins from one address were limited, want most", limited)
	}
	// Refused tokens count there too: guessing tokens is held back as well.
	r := e.call("GET", "/v1/servers", nil, "Authorization", "Bearer kt.6f1e0c43-5a7e-4b55-9d3e-2b8f4a1c7d10.guess")
	if r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("a refused token from an address past its limit: %d %s, want 429", r.Status, r.Body)
	}
	// And so do requests without a token (each would be an audit record).
	if r := e.call("GET", "/v1/servers", nil, "Authorization", ""); r.Status != http.StatusTooManyRequests {
		t.Fatalf("a request without a token from an address past its limit: %d %s, want 429", r.Status, r.Body)
	}
}

// GET /v1/servers/{id}?at=T answers from the events: the server as it was
// then, for its own project only.
func TestServerAsItWasAtATime(t *testing.T) {
	e := start(t, nil)
	ctx := context.Background()
	e.seed()
	acc, _ := e.createServer("web-1")
	e.waitOp(acc.OperationID, 20*time.Second)
	before := acc.Server.CreatedAt.Add(-time.Second)
	active := time.Now().UTC()
	time.Sleep(20 * time.Millisecond)
	e.waitOp(e.act(acc.Server.ID, "stop").OperationID, 20*time.Second)
	at := func(c *api.Client, when time.Time) (api.Server, int) {
		s, res, err := api.Get[api.Server](ctx, c, api.Path(api.Servers, acc.Server.ID)+"?at="+when.Format(time.RFC3339Nano), api.Opts{})
		return s, status(res, err)
	}
	if s, code := at(e.api, active); code != http.StatusOK || s.Status != "ACTIVE" || s.ID != acc.Server.ID {
		t.Fatalf("at %s: %d %+v, want ACTIVE", active, code, s)
	}
	if s, code := at(e.api, time.Now()); code != http.StatusOK || s.Status != "STOPPED" {
		t.Fatalf("now: %d %+v, want STOPPED", code, s)
	}
	if _, code := at(e.api, before); code != http.StatusNotFound {
		t.Fatalf("before its creation: %d, want 404", code)
	}
	e.addProject("beta")
	bob := e.addUser("bob", "beta", "member")
	if _, code := at(bob.c, active); code != http.StatusNotFound {
		t.Fatalf("another project's member: %d, want 404", code)
	}
	r := e.call("GET", api.Path(api.Servers, acc.Server.ID)+"?at=yesterday", nil)
	if r.Status != http.StatusUnprocessableEntity || !strings.Contains(string(r.Body), "RFC 3339") {
		t.Fatalf("a malformed time: %d %s", r.Status, r.Body)
	}
	e.waitOp(e.act(acc.Server.ID, "delete").OperationID, 20*time.Second)
	if s, code := at(e.api, active); code != http.StatusOK || s.Status != "ACTIVE" {
		t.Fatalf("a deleted server, at a time it was running: %d %+v", code, s)
	}
	if _, code := at(e.api, time.Now()); code != http.StatusNotFound {
		t.Fatalf("a deleted server, now: %d, want 404", code)
	}
}

// A project with as many servers under way as its bound gets 429 for the
// next create or action, while other projects and deletes go on.
func TestConcurrentOperationsPerProjectAreBounded(t *testing.T) {
	e := start(t, func(c *node.Config) {
		c.FakeKnobs = fake.Knobs{Latency: 1500 * time.Millisecond}
		c.Limits = httpapi.Limits{Rate: -1, LoginRate: -1, ProjectOperations: 3}
	})
	ctx := context.Background()
	e.seed()
	pub, res, err := api.Create[api.Image](ctx, e.api, api.Images, api.ImageBody{Name: "pub", DiskFormat: "raw", Visibility: "public"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	seq := e.upload(pub.ID, []byte("bytes"), res.Sequence)
	e.addProject("alpha")
	e.addProject("beta")
	alice, bob := e.addUser("alice", "alpha", "member"), e.addUser("bob", "beta", "member")
	create := func(u tenant, name string, after uint64) (api.Accepted, uint64, error) {
		a, res, err := api.Create[api.Accepted](ctx, u.c, api.Servers, api.ServerBody{Name: name, Flavor: "small", Image: "pub"}, api.Opts{MinSequence: after})
		if err != nil {
			return a, 0, err
		}
		return a, res.Sequence, nil
	}
	var accs []api.Accepted
	for i := 0; i < 3; i++ {
		a, s, err := create(alice, fmt.Sprintf("a-%d", i), seq)
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
		accs, seq = append(accs, a), s
	}
	_, _, err = create(alice, "a-3", seq)
	var p *api.Problem
	if !errors.As(err, &p) || p.Status != http.StatusTooManyRequests || p.RetryAfter == "" || !strings.Contains(p.Detail, "the bound is 3") {
		t.Fatalf("a fourth create while three build: %v, want 429 naming the bound", err)
	}
	if _, _, err := create(bob, "b-0", seq); err != nil {
		t.Fatalf("another project's create: %v", err)
	}
	// A delete is never held back.
	if _, err := alice.c.Do(ctx, api.Request{Method: "DELETE", Path: api.Path(api.Servers, accs[0].Server.ID)}, nil); err != nil {
		t.Fatalf("a delete while the project is at its bound: %v", err)
	}
	for _, a := range accs {
		e.waitOp(a.OperationID, 30*time.Second)
	}
	eventually(t, 30*time.Second, func() error {
		_, _, err := create(alice, "a-later", 0)
		return err
	})
}

// 100 concurrent creates against a quota of 10 servers: exactly 10 are
// accepted, the rest refused as over the quota; use is 10, and 0 once they
// are deleted.
func TestQuotaHoldsUnderConcurrentCreates(t *testing.T) {
	e := start(t, nil)
	ctx := context.Background()
	e.seed()
	pub, res, err := api.Create[api.Image](ctx, e.api, api.Images, api.ImageBody{Name: "pub", DiskFormat: "raw", Visibility: "public"}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	seq := e.upload(pub.ID, []byte("bytes"), res.Sequence)
	e.addProject("alpha")
	alice := e.addUser("alice", "alpha", "member")
	if _, err := alice.c.Do(ctx, api.Request{Method: "PUT", Path: api.Path(api.Projects, "alpha", "quotas"), Body: api.QuotasBody{Limits: map[string]int{"servers": 10}}}, nil); status(nil, err) != http.StatusForbidden {
		t.Fatalf("a member sets quotas: %v, want 403", err)
	}
	var q api.Quotas
	if _, err := e.api.Do(ctx, api.Request{Method: "PUT", Path: api.Path(api.Projects, "alpha", "quotas"), Body: api.QuotasBody{Limits: map[string]int{"servers": 10, "vcpus": 100}}}, &q); err != nil {
		t.Fatal(err)
	}
	inUse := func(c *api.Client) map[string]int { return quotaInUse(t, c, "alpha") }
	var mu sync.Mutex
	codes := map[int]int{}
	var ids []string
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, res, err := api.Create[api.Accepted](ctx, alice.c, api.Servers, api.ServerBody{Name: fmt.Sprintf("q-%d", i), Flavor: "small", Image: "pub"}, api.Opts{MinSequence: seq})
			code := status(res, err)
			mu.Lock()
			defer mu.Unlock()
			codes[code]++
			if code == http.StatusAccepted {
				ids = append(ids, a.Server.ID)
			} else if code == http.StatusConflict && !strings.Contains(err.Error(), "quota exceeded") {
				t.Errorf("a refusal that is not about the quota: %v", err)
			}
		}()
	}
	wg.Wait()
	if codes[http.StatusAccepted] != 10 || codes[http.StatusConflict] != 90 {
		t.Fatalf("100 creates against a quota of 10: %v, want 10 accepted and 90 refused", codes)
	}
	if u := inUse(alice.c); u["servers"] != 10 || u["vcpus"] != 10 || u["ram_mib"] != 10*512 {
		t.Fatalf("in use after the creates: %v", u)
	}
	servers, _, err := api.Get[api.List[api.Server]](ctx, alice.c, api.Servers+"?limit=1000", api.Opts{MinSequence: seq})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		servers, _, err = api.Get[api.List[api.Server]](ctx, alice.c, api.Servers+"?limit=1000", api.Opts{})
		if err == nil && len(servers.Items) != 10 {
			err = fmt.Errorf("%d servers listed", len(servers.Items))
		}
		return err
	})
	for _, id := range ids {
		e.waitOp(e.act(id, "delete").OperationID, 30*time.Second)
	}
	eventually(t, 10*time.Second, func() error {
		if u := inUse(alice.c); u["servers"] != 0 || u["vcpus"] != 0 || u["ram_mib"] != 0 {
			return fmt.Errorf("in use after the deletes: %v", u)
		}
		return nil
	})
	if _, _, err := api.Create[api.Accepted](ctx, alice.c, api.Servers, api.ServerBody{Name: "again", Flavor: "small", Image: "pub"}, api.Opts{}); err != nil {
		t.Fatalf("a create once the quota is free again: %v", err)
	}
}
