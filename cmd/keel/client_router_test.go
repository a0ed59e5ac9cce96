package main

import (
	"net/http"
	"strings"
	"testing"
)

const routerJSON = `{"id":"r1","project_id":"p1","name":"edge","gateway":{"network_id":"n-ext","subnet_id":"s-ext","port_id":"pt-gw","ip":"203.0.113.2","snat":false},` +
	`"interfaces":[{"subnet_id":"s1","cidr":"10.0.0.0/24","port_id":"pt-if","ip":"10.0.0.1"}],"created_at":"2026-01-01T00:00:00Z"}`

// The router verbs call the router's sub-paths with their bodies, then show
// the router as the read model has it after the call.
func TestRouterVerbs(t *testing.T) {
	f, srv := newFakeAPI(t, map[string]func(http.ResponseWriter, *http.Request){
		"PUT /v1/routers/edge/gateway":              answer(200, "7", routerJSON),
		"POST /v1/routers/edge/interfaces":          answer(200, "8", routerJSON),
		"DELETE /v1/routers/edge/interfaces/web-v4": answer(204, "9", ""),
		"GET /v1/routers/edge":                      answer(200, "", routerJSON),
	})
	out, _, err := runCLI(t, srv.URL, "router", "set-gateway", "edge", "public", "--no-snat")
	if err != nil || !strings.Contains(out, "203.0.113.2 on network n-ext") || !strings.Contains(out, "10.0.0.1") {
		t.Fatalf("set-gateway: %q %v", out, err)
	}
	if _, _, err := runCLI(t, srv.URL, "router", "add-interface", "edge", "web-v4", "--idempotency-key", "k1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, srv.URL, "router", "remove-interface", "edge", "web-v4"); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	if len(reqs) != 6 {
		t.Fatalf("%d requests, want 3 calls each read back: %+v", len(reqs), reqs)
	}
	if b := reqs[0].body; b["network"] != "public" || b["snat"] != false {
		t.Fatalf("set-gateway body %v", b)
	}
	if r := reqs[1]; r.method != "GET" || r.minSeq != "7" {
		t.Fatalf("read back %+v, want a GET at sequence 7", r)
	}
	if r := reqs[2]; r.body["subnet"] != "web-v4" || r.idemKey != "k1" {
		t.Fatalf("add-interface %+v", r)
	}
}

// floating-ip associate puts the port, then shows the floating IP.
func TestFloatingIPAssociate(t *testing.T) {
	const fip = `{"id":"f1","project_id":"p1","network_id":"n-ext","subnet_id":"s-ext","ip":"203.0.113.3","port_id":"pt1","fixed_ip":"10.0.0.5","router_id":"r1","created_at":"2026-01-01T00:00:00Z"}`
	f, srv := newFakeAPI(t, map[string]func(http.ResponseWriter, *http.Request){
		"PUT /v1/floating-ips/203.0.113.3/association": answer(200, "5", fip),
		"GET /v1/floating-ips/203.0.113.3":             answer(200, "", fip),
	})
	out, _, err := runCLI(t, srv.URL, "floating-ip", "associate", "203.0.113.3", "vm")
	if err != nil || !strings.Contains(out, "10.0.0.5") || !strings.Contains(out, "r1") {
		t.Fatalf("associate: %q %v", out, err)
	}
	if b := f.requests()[0].body; b["port"] != "vm" {
		t.Fatalf("associate body %v", b)
	}
}
