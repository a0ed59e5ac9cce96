package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const keypairJSON = `{"id":"k1","name":"laptop","type":"ssh-ed25519","public_key":"ssh-ed25519 AAAA me@laptop","fingerprint":"SHA256:abc","created_at":"2026-01-01T00:00:00Z"}`

// keel keypair create sends the file's key, reads the keypair back and
// shows its fingerprint; server create --key-name and server login-info
// reach the API as the docs say.
func TestKeypairCreateKeyNameAndLoginInfo(t *testing.T) {
	f, srv := newFakeAPI(t, map[string]func(http.ResponseWriter, *http.Request){
		"POST /v1/keypairs":                  answer(201, "7", keypairJSON),
		"GET /v1/keypairs/k1":                answer(200, "", keypairJSON),
		"POST /v1/servers":                   answer(202, "8", `{"server":{"id":"s1","name":"web-1","status":"BUILDING","key_name":"laptop"},"operation_id":"op1"}`),
		"GET /v1/servers/web%201/login-info": answer(200, "", `{"username":"keel","password":"pw-from-api"}`),
	})
	pub := filepath.Join(t.TempDir(), "id_ed25519.pub")
	if err := os.WriteFile(pub, []byte("ssh-ed25519 AAAA me@laptop\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCLI(t, srv.URL, "keypair", "create", "laptop", "--public-key-file", pub)
	if err != nil || !strings.Contains(out, "SHA256:abc") || !strings.Contains(out, "ssh-ed25519 AAAA me@laptop") {
		t.Fatalf("keypair create: %q, %v", out, err)
	}
	reqs := f.requests()
	if b := reqs[0].body; b["name"] != "laptop" || b["public_key"] != "ssh-ed25519 AAAA me@laptop\n" {
		t.Fatalf("keypair body %v", b)
	}
	if reqs[1].path != "/v1/keypairs/k1" || reqs[1].minSeq != "7" {
		t.Fatalf("keypair read back %+v", reqs[1])
	}
	out, _, err = runCLI(t, srv.URL, "server", "create", "web-1", "--flavor", "m1", "--image", "cirros", "--key-name", "laptop")
	if err != nil || !strings.Contains(out, "laptop") {
		t.Fatalf("server create: %q, %v", out, err)
	}
	if b := f.requests()[2].body; b["key_name"] != "laptop" {
		t.Fatalf("server body %v", b)
	}
	out, _, err = runCLI(t, srv.URL, "server", "login-info", "web 1")
	if err != nil || !strings.Contains(out, "keel") || !strings.Contains(out, "pw-from-api") {
		t.Fatalf("login-info: %q, %v", out, err)
	}
	if _, _, err := runCLI(t, srv.URL, "keypair", "create", "x", "--public-key-file", pub+".missing"); err == nil {
		t.Fatal("a missing --public-key-file was not an error")
	}
	if n := len(f.requests()); n != 4 {
		t.Fatalf("%d requests; a missing key file still sent one", n)
	}
}
