package main

import (
	"net/http"
	"strings"
	"testing"
)

const (
	subnetJSON = `{"id":"s1","network_id":"n1","project_id":"p1","name":"app","cidr":"10.0.0.0/24","gateway":"10.0.0.1","dhcp":false,"dns":["10.0.0.3"],` +
		`"pools":[{"start":"10.0.0.10","end":"10.0.0.99"}],"routes":[{"destination":"192.168.0.0/16","nexthop":"10.0.0.254"}],"in_use":0,"created_at":"2026-01-01T00:00:00Z"}`
	ruleJSON = `{"id":"r1","direction":"ingress","ethertype":"IPv4","protocol":"tcp","port_min":8000,"port_max":8080}`
)

// keel subnet create turns its flags into the API's body and shows the
// subnet read back; keel security-group rule add sends a port range and
// shows the rule; bad flag values are refused before any request.
func TestSubnetAndRuleFlags(t *testing.T) {
	f, srv := newFakeAPI(t, map[string]func(http.ResponseWriter, *http.Request){
		"POST /v1/subnets":                   answer(201, "5", subnetJSON),
		"GET /v1/subnets/s1":                 answer(200, "", subnetJSON),
		"POST /v1/security-groups/web/rules": answer(201, "6", ruleJSON),
	})
	out, _, err := runCLI(t, srv.URL, "subnet", "create", "--network", "app-net", "--cidr", "10.0.0.0/24", "--name", "app", "--no-dhcp",
		"--dns", "10.0.0.3", "--pool", "10.0.0.10-10.0.0.99", "--route", "192.168.0.0/16=10.0.0.254")
	if err != nil || !strings.Contains(out, "10.0.0.10-10.0.0.99") || !strings.Contains(out, "192.168.0.0/16 via 10.0.0.254") {
		t.Fatalf("subnet create: %q, %v", out, err)
	}
	b := f.requests()[0].body
	pools, _ := b["pools"].([]any)
	if b["network"] != "app-net" || b["dhcp"] != false || len(pools) != 1 || pools[0].(map[string]any)["end"] != "10.0.0.99" {
		t.Fatalf("subnet body %v", b)
	}
	out, _, err = runCLI(t, srv.URL, "security-group", "rule", "add", "web", "--direction", "ingress", "--protocol", "tcp", "--port", "8000-8080")
	if err != nil || !strings.Contains(out, "8000-8080") {
		t.Fatalf("rule add: %q, %v", out, err)
	}
	if b := f.requests()[2].body; b["port_min"] != float64(8000) || b["port_max"] != float64(8080) || b["protocol"] != "tcp" {
		t.Fatalf("rule body %v", b)
	}
	for _, args := range [][]string{
		{"subnet", "create", "--network", "n", "--cidr", "10.0.0.0/24", "--pool", "10.0.0.10"},
		{"subnet", "create", "--network", "n", "--cidr", "10.0.0.0/24", "--route", "192.168.0.0/16"},
		{"security-group", "rule", "add", "web", "--direction", "ingress", "--port", "http"},
	} {
		if _, _, err := runCLI(t, srv.URL, args...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	if n := len(f.requests()); n != 3 {
		t.Fatalf("%d requests; bad flags still sent some", n)
	}
}
