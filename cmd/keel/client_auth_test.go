package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

const (
	tokenID    = "6a1c3d2e-0b4f-4e7a-9c1d-2f3e4a5b6c7d"
	whoamiJSON = `{"user_id":"u1","user_name":"alice","project_id":"p1","role":"admin","cloud_admin":true,"read_only":false,` +
		`"token_id":"` + tokenID + `","expires_at":"2030-01-01T00:00:00Z"}`
	emptyList = `{"items":[],"next_cursor":""}`
)

// isolate gives the test its own config directory (no real home is
// touched) and returns where the saved login lives in it.
func isolate(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	t.Setenv("HOME", dir)
	path, err := credentialsPath()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(path, dir) {
		t.Fatalf("credentials path %s is outside the test's config dir %s", path, dir)
	}
	return path
}

// saveLogin writes a saved login as keel login does, with mode perm.
func saveLogin(t *testing.T, path, api, token string, perm os.FileMode) {
	t.Helper()
	raw, _ := json.Marshal(map[string]any{"api": api, "token": token, "token_id": tokenID, "user": "alice",
		"project_id": "p1", "expires_at": "2030-01-01T00:00:00Z"})
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // past the umask
		t.Fatal(err)
	}
}

// runKeel runs the client commands with stdin, and no --api unless args
// give one.
func runKeel(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := &cobra.Command{Use: "keel", SilenceUsage: true, SilenceErrors: true}
	addClientCommands(root)
	var out, errOut bytes.Buffer
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err = root.Execute()
	return out.String(), errOut.String(), err
}

// The token sent is --token, else KEEL_TOKEN, else the saved login's, and
// the saved login's only to its own API; without --api the API is the
// saved login's.
func TestTokenPrecedence(t *testing.T) {
	path := isolate(t)
	f, srv := newFakeAPI(t, map[string]func(http.ResponseWriter, *http.Request){"GET /v1/whoami": answer(200, "", whoamiJSON)})
	other, otherSrv := newFakeAPI(t, map[string]func(http.ResponseWriter, *http.Request){"GET /v1/whoami": answer(200, "", whoamiJSON)})
	saveLogin(t, path, srv.URL, "kt.saved", 0o600)
	t.Setenv("KEEL_TOKEN", "kt.env")

	out, _, err := runKeel(t, "", "whoami", "--token", "kt.flag")
	if err != nil || !strings.Contains(out, "alice") || !strings.Contains(out, "CLOUD ADMIN  yes") {
		t.Fatalf("whoami: %q, %v", out, err)
	}
	if _, _, err := runKeel(t, "", "whoami"); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KEEL_TOKEN", "")
	if _, _, err := runKeel(t, "", "whoami"); err != nil {
		t.Fatal(err)
	}
	var sent []string
	for _, r := range f.requests() {
		sent = append(sent, r.auth)
	}
	if want := []string{"Bearer kt.flag", "Bearer kt.env", "Bearer kt.saved"}; strings.Join(sent, "|") != strings.Join(want, "|") {
		t.Fatalf("Authorization sent (to the saved login's API, no --api given): %q, want %q", sent, want)
	}

	// Another API gets no token from a login saved for this one.
	if _, _, err := runKeel(t, "", "--api", otherSrv.URL, "whoami"); err != nil {
		t.Fatal(err)
	}
	if reqs := other.requests(); len(reqs) != 1 || reqs[0].auth != "" {
		t.Fatalf("the other API got %+v; want one request without Authorization", reqs)
	}
}

func TestLoginSavesTheTokenPrivatelyAndNeverPrintsIt(t *testing.T) {
	path := isolate(t)
	const secret, password = "kt.t1.S3CRET-never-printed", "correct horse battery"
	issued := `{"id":"` + tokenID + `","user_id":"u1","project_id":"p1","name":"login","read_only":false,` +
		`"created_at":"2029-12-31T22:00:00Z","expires_at":"2030-01-01T00:00:00Z","revoked_at":null,"token":"` + secret + `"}`
	var f *fakeAPI
	f, srv := newFakeAPI(t, map[string]func(http.ResponseWriter, *http.Request){
		"POST /v1/tokens": func(w http.ResponseWriter, r *http.Request) {
			reqs := f.requests() // the fake has read the body
			if reqs[len(reqs)-1].body["password"] != password {
				answer(401, "", `{"title":"Unauthorized","status":401,"detail":"wrong user name or password"}`)(w, r)
				return
			}
			answer(201, "3", issued)(w, r)
		},
		"GET /v1/whoami":  answer(200, "", whoamiJSON),
		"GET /v1/flavors": answer(200, "", emptyList),
	})

	_, _, err := runKeel(t, "wrong password\n", "--api", srv.URL, "login", "--user", "alice", "--password-stdin")
	if err == nil || !strings.Contains(err.Error(), "wrong user name or password") || strings.Contains(err.Error(), "run keel login") {
		t.Fatalf("a wrong password: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("a refused login saved a file: %v", err)
	}

	out, errOut, err := runKeel(t, password+"\n", "--api", srv.URL, "login", "--user", "alice", "--project", "dev", "--password-stdin", "--expires-in", "2h")
	if err != nil {
		t.Fatalf("login: %v (stderr %q)", err, errOut)
	}
	if strings.Contains(out+errOut, secret) || strings.Contains(out+errOut, password) {
		t.Fatalf("login printed the secret or the password:\n%s%s", out, errOut)
	}
	want := "logged in as alice in project p1 (role admin, cloud admin), token expires at 2030-01-01T00:00:00.000Z, saved to " + path + "\n"
	if out != want {
		t.Fatalf("login printed %q, want %q", out, want)
	}
	reqs := f.requests()
	login, who := reqs[1], reqs[2]
	if login.auth != "" || login.body["user"] != "alice" || login.body["password"] != password ||
		login.body["project"] != "dev" || login.body["expires_in"] != float64(7200) {
		t.Fatalf("login request %+v", login)
	}
	if who.path != "/v1/whoami" || who.auth != "Bearer "+secret {
		t.Fatalf("whoami request %+v", who)
	}

	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v, mode %v; want 0600", err, st.Mode())
	}
	if dir, err := os.Stat(filepath.Dir(path)); err != nil || dir.Mode().Perm() != 0o700 {
		t.Fatalf("credentials dir: %v, mode %v; want 0700", err, dir.Mode())
	}
	var saved credentials
	raw, _ := os.ReadFile(path)
	if err := json.Unmarshal(raw, &saved); err != nil || saved.Token != secret || saved.TokenID != tokenID ||
		saved.API != srv.URL || saved.User != "alice" || saved.ProjectID != "p1" || saved.ExpiresAt.IsZero() {
		t.Fatalf("saved %s (%v)", raw, err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".credentials-*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}

	// The next command, without --api or a token, uses the login.
	if _, _, err := runKeel(t, "", "flavor", "list"); err != nil {
		t.Fatal(err)
	}
	if last := f.requests()[3]; last.path != "/v1/flavors" || last.auth != "Bearer "+secret {
		t.Fatalf("after login: %+v", last)
	}
}

// A saved login that group or others may read is not used (nothing is
// sent with it), says how to fix it, and keel login replaces it.
func TestGroupReadableCredentialsRefused(t *testing.T) {
	path := isolate(t)
	f, srv := newFakeAPI(t, map[string]func(http.ResponseWriter, *http.Request){
		"POST /v1/tokens": answer(201, "3", `{"id":"`+tokenID+`","project_id":"p1","expires_at":"2030-01-01T00:00:00Z","token":"kt.new"}`),
		"GET /v1/whoami":  answer(200, "", whoamiJSON),
	})
	saveLogin(t, path, srv.URL, "kt.leaked", 0o640)
	_, _, err := runKeel(t, "", "--api", srv.URL, "flavor", "list")
	if err == nil || !strings.Contains(err.Error(), "chmod 600 "+path) || !strings.Contains(err.Error(), "0640") {
		t.Fatalf("err = %v", err)
	}
	if n := len(f.requests()); n != 0 {
		t.Fatalf("%d requests sent with a group-readable login", n)
	}

	t.Setenv("KEEL_USER", "alice")
	t.Setenv("KEEL_PASSWORD", "correct horse battery")
	if _, _, err := runKeel(t, "", "--api", srv.URL, "login"); err != nil {
		t.Fatalf("login over an insecure file: %v", err)
	}
	raw, _ := os.ReadFile(path)
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 || !strings.Contains(string(raw), "kt.new") {
		t.Fatalf("after login: %v, %v, %s", err, st.Mode(), raw)
	}
	if b := f.requests()[0].body; b["user"] != "alice" || b["password"] != "correct horse battery" {
		t.Fatalf("login from KEEL_USER and KEEL_PASSWORD sent %v", b)
	}
}

func TestLogout(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		gone   bool // the saved login is removed
	}{
		{"revoked", 204, "", true},
		{"token already refused", 401, `{"title":"Unauthorized","status":401,"detail":"token expired; log in again"}`, true},
		{"API failing", 503, `{"title":"Service Unavailable","status":503}`, false},
		// The token authenticated, so a 404 is no sign that it is gone.
		{"revoke refused", 404, `{"title":"Not Found","status":404,"detail":"token not found"}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := isolate(t)
			f, srv := newFakeAPI(t, map[string]func(http.ResponseWriter, *http.Request){
				"DELETE /v1/tokens/" + tokenID: answer(tc.status, "", tc.body),
			})
			saveLogin(t, path, srv.URL, "kt.saved", 0o600)
			out, _, err := runKeel(t, "", "logout")
			_, statErr := os.Stat(path)
			if gone := os.IsNotExist(statErr); gone != tc.gone {
				t.Fatalf("file removed: %v, want %v (err %v)", gone, tc.gone, err)
			}
			if tc.gone && (err != nil || !strings.Contains(out, "logged out") || !strings.Contains(out, path)) {
				t.Fatalf("logout: %q, %v", out, err)
			}
			if !tc.gone && (err == nil || !strings.Contains(err.Error(), "the login is kept")) {
				t.Fatalf("logout with a failing API: %v", err)
			}
			if reqs := f.requests(); len(reqs) != 1 || reqs[0].auth != "Bearer kt.saved" {
				t.Fatalf("requests %+v", reqs)
			}
		})
	}
}

func TestUnauthorizedSaysRunKeelLogin(t *testing.T) {
	path := isolate(t)
	_, srv := newFakeAPI(t, map[string]func(http.ResponseWriter, *http.Request){
		"GET /v1/flavors": answer(401, "", `{"title":"Unauthorized","status":401,"detail":"authentication required"}`),
	})
	_, _, err := runKeel(t, "", "--api", srv.URL, "flavor", "list")
	if err == nil || !strings.HasPrefix(err.Error(), "not logged in or the token is no longer valid: run keel login") ||
		!strings.Contains(err.Error(), "authentication required") || !isStatus(err, 401) {
		t.Fatalf("err = %v", err)
	}
	// Logged in elsewhere: the error says which API the login is for.
	saveLogin(t, path, "http://keel.example:8080", "kt.saved", 0o600)
	_, _, err = runKeel(t, "", "--api", srv.URL, "flavor", "list")
	if err == nil || !strings.Contains(err.Error(), "the saved login is for http://keel.example:8080") {
		t.Fatalf("err = %v", err)
	}
	t.Setenv("KEEL_TOKEN", "kt.stale")
	_, _, err = runKeel(t, "", "--api", srv.URL, "flavor", "list")
	if err == nil || !strings.Contains(err.Error(), "run keel login") || !strings.Contains(err.Error(), "KEEL_TOKEN is set") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseExpiresIn(t *testing.T) {
	for in, want := range map[string]int{"": 0, "90m": 5400, "12h": 43200, "30d": 2592000, "1.5s": 2} {
		if got, err := parseExpiresIn(in); err != nil || got != want {
			t.Errorf("parseExpiresIn(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"0s", "-1h", "367d", "9000h", "soon", "1w"} {
		if _, err := parseExpiresIn(in); err == nil || !strings.Contains(err.Error(), "--expires-in") {
			t.Errorf("parseExpiresIn(%q) = %v; want an error naming --expires-in", in, err)
		}
	}
}
