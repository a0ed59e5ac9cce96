package main

import (
	"net/http"
	"strings"
	"testing"
)

func TestProjectGrantAndRevoke(t *testing.T) {
	isolate(t)
	t.Setenv("KEEL_TOKEN", "kt.admin")
	f, srv := newFakeAPI(t, map[string]func(http.ResponseWriter, *http.Request){
		"PUT /v1/projects/dev/members/alice": answer(200, "12",
			`{"user_id":"u1","user_name":"alice","project_id":"p1","role":"admin","granted_at":"2030-01-01T00:00:00Z"}`),
		"DELETE /v1/projects/dev/members/alice": answer(204, "13", ""),
		"GET /v1/projects/dev/members":          answer(200, "", `{"items":[]}`),
	})
	out, _, err := runCLI(t, srv.URL, "project", "grant", "dev", "alice", "admin")
	if err != nil || out != "user alice is now admin in project dev\n" {
		t.Fatalf("grant: %q, %v", out, err)
	}
	out, _, err = runCLI(t, srv.URL, "project", "revoke", "dev", "alice")
	if err != nil || out != "user alice no longer has a role in project dev\n" {
		t.Fatalf("revoke: %q, %v", out, err)
	}
	reqs := f.requests()
	if len(reqs) != 4 {
		t.Fatalf("requests %+v", reqs)
	}
	if g := reqs[0]; g.method != "PUT" || g.body["role"] != "admin" || len(g.body) != 1 || g.auth != "Bearer kt.admin" {
		t.Fatalf("grant sent %+v", g)
	}
	if r := reqs[2]; r.method != "DELETE" || r.path != "/v1/projects/dev/members/alice" {
		t.Fatalf("revoke sent %+v", r)
	}
	// keel project members right after reads the change.
	if reqs[1].minSeq != "12" || reqs[3].minSeq != "13" {
		t.Fatalf("read back %+v, %+v", reqs[1], reqs[3])
	}
	if _, _, err := runCLI(t, srv.URL, "project", "grant", "dev", "alice", "owner"); err == nil || !strings.Contains(err.Error(), "reader") {
		t.Fatalf("an unknown role: %v", err)
	}
	if n := len(f.requests()); n != 4 {
		t.Fatalf("an unknown role was sent (%d requests)", n)
	}
}

func TestTokenCreateShowsTheSecretOnce(t *testing.T) {
	isolate(t)
	const secret = "kt.t2.script-secret"
	f, srv := newFakeAPI(t, map[string]func(http.ResponseWriter, *http.Request){
		"POST /v1/tokens": answer(201, "5", `{"id":"`+tokenID+`","project_id":"p1","name":"backup","read_only":true,`+
			`"expires_at":"2030-01-31T00:00:00Z","token":"`+secret+`"}`),
	})
	out, errOut, err := runCLI(t, srv.URL, "--token", "kt.mine", "token", "create", "--name", "backup", "--read-only", "--expires-in", "30d")
	if err != nil || strings.Count(out, secret) != 1 || !strings.Contains(errOut, "shown once") {
		t.Fatalf("out %q, stderr %q, err %v", out, errOut, err)
	}
	r := f.requests()[0]
	if r.auth != "Bearer kt.mine" || r.body["name"] != "backup" || r.body["read_only"] != true || r.body["expires_in"] != float64(30*24*3600) {
		t.Fatalf("token create sent %+v", r)
	}
	// Without a token there is no one to issue one to: said before asking.
	if _, _, err := runCLI(t, srv.URL, "token", "create"); err == nil || !strings.Contains(err.Error(), "keel login") {
		t.Fatalf("token create logged out: %v", err)
	}
	if n := len(f.requests()); n != 1 {
		t.Fatalf("%d requests", n)
	}
}

func TestTokenListLiveAndRevoke(t *testing.T) {
	isolate(t)
	t.Setenv("KEEL_TOKEN", "kt.mine")
	f, srv := newFakeAPI(t, map[string]func(http.ResponseWriter, *http.Request){
		"GET /v1/tokens": answer(200, "", `{"items":[{"id":"`+tokenID+`","name":"ci","project_id":"p1","read_only":true,`+
			`"expires_at":"2000-01-01T00:00:00Z"}],"next_cursor":""}`),
		"DELETE /v1/tokens/" + tokenID: answer(204, "9", ""),
	})
	out, _, err := runCLI(t, srv.URL, "token", "list", "--live")
	if err != nil || !strings.Contains(out, tokenID) || !strings.Contains(out, "expired") {
		t.Fatalf("list: %q, %v", out, err)
	}
	if q := f.requests()[0]; q.auth != "Bearer kt.mine" || !strings.Contains("&"+q.query+"&", "&live=true&") {
		t.Fatalf("list sent %+v", q)
	}
	out, _, err = runCLI(t, srv.URL, "token", "revoke", tokenID)
	if err != nil || out != "token "+tokenID+" revoked\n" {
		t.Fatalf("revoke: %q, %v", out, err)
	}
	if r := f.requests()[1]; r.method != "DELETE" || r.auth != "Bearer kt.mine" {
		t.Fatalf("revoke sent %+v", r)
	}
}

func TestUserCreateReadsThePasswordFromStdin(t *testing.T) {
	isolate(t)
	const pw = "a long enough password"
	userJSON := `{"id":"u2","name":"bob","roles":[{"user_id":"u2","user_name":"bob","project_id":"p1","role":"reader"}],"created_at":"2030-01-01T00:00:00Z"}`
	f, srv := newFakeAPI(t, map[string]func(http.ResponseWriter, *http.Request){
		"POST /v1/users":   answer(201, "20", userJSON),
		"GET /v1/users/u2": answer(200, "", userJSON),
	})
	out, errOut, err := runKeel(t, pw+"\n", "--api", srv.URL, "user", "create", "bob", "--project", "dev", "--role", "reader", "--password-stdin")
	if err != nil || !strings.Contains(out, "p1:reader") || strings.Contains(out+errOut, pw) {
		t.Fatalf("out %q, stderr %q, err %v", out, errOut, err)
	}
	b := f.requests()[0].body
	if b["name"] != "bob" || b["password"] != pw || b["project"] != "dev" || b["role"] != "reader" {
		t.Fatalf("user create sent %v", b)
	}
	if _, _, err := runKeel(t, pw+"\n", "--api", srv.URL, "user", "create", "carol", "--role", "admin", "--password-stdin"); err == nil ||
		!strings.Contains(err.Error(), "--project") {
		t.Fatalf("--role without --project: %v", err)
	}
	// No terminal to ask on and no --password-stdin: told what to do.
	if _, _, err := runKeel(t, "", "--api", srv.URL, "user", "create", "carol"); err == nil || !strings.Contains(err.Error(), "--password-stdin") {
		t.Fatalf("no password: %v", err)
	}
	if n := len(f.requests()); n != 2 {
		t.Fatalf("%d requests", n)
	}
}

// Changing one's own password sends the present one; an admin changing
// someone else's does not.
func TestUserPassword(t *testing.T) {
	isolate(t)
	t.Setenv("KEEL_TOKEN", "kt.alice")
	f, srv := newFakeAPI(t, map[string]func(http.ResponseWriter, *http.Request){
		"GET /v1/whoami":               answer(200, "", whoamiJSON),
		"PUT /v1/users/alice/password": answer(204, "30", ""),
		"PUT /v1/users/bob/password":   answer(204, "31", ""),
	})
	t.Setenv("KEEL_CURRENT_PASSWORD", "the old password")
	out, _, err := runKeel(t, "the new password!\n", "--api", srv.URL, "user", "password", "alice", "--password-stdin")
	if err != nil || !strings.Contains(out, "password of user alice changed") {
		t.Fatalf("own password: %q, %v", out, err)
	}
	if b := f.requests()[1].body; b["current_password"] != "the old password" || b["password"] != "the new password!" {
		t.Fatalf("own password sent %v", b)
	}
	t.Setenv("KEEL_CURRENT_PASSWORD", "")
	t.Setenv("KEEL_NEW_PASSWORD", "bob's new password")
	if _, _, err := runKeel(t, "", "--api", srv.URL, "user", "password", "bob"); err != nil {
		t.Fatal(err)
	}
	if b := f.requests()[3].body; b["password"] != "bob's new password" || b["current_password"] != nil {
		t.Fatalf("bob's password sent %v", b)
	}
	// One's own without the present one, and no terminal to ask on.
	if _, _, err := runKeel(t, "", "--api", srv.URL, "user", "password", "alice"); err == nil || !strings.Contains(err.Error(), "KEEL_CURRENT_PASSWORD") {
		t.Fatalf("own password without the present one: %v", err)
	}
	if n := len(f.requests()); n != 5 {
		t.Fatalf("%d requests; the last one should only be whoami", n)
	}
}
