package main

import (
	"net/http"
	"strings"
	"testing"
)

const acceptedJSON = `{"server":{"id":"s1","name":"web","status":"ACTIVE","desired_state":"running","power_state":"RUNNING","keep_running":true,
"flavor":{"id":"f","name":"small","vcpus":1,"ram_mib":512,"disk_gib":1},"image_id":"i","version":7,"data_disks_gib":[],
"nics":[{"port_id":"p1","network_id":"n1","mac":"fa:16:3e:00:00:01","ips":["10.0.0.5"]}],"addresses":["10.0.0.5"],
"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"},"operation_id":"op-1"}`

// attach-interface posts the network to the server's interfaces, and
// detach-interface deletes the port's; both show the operation, and the
// server's NICs are listed with their ports.
func TestAttachAndDetachInterfaceCommands(t *testing.T) {
	f, srv := newFakeAPI(t, map[string]func(w http.ResponseWriter, r *http.Request){
		"POST /v1/servers/web/interfaces":      answer(202, "9", acceptedJSON),
		"DELETE /v1/servers/web/interfaces/p1": answer(202, "10", acceptedJSON),
	})
	out, errOut, err := runCLI(t, srv.URL, "server", "attach-interface", "web", "--network", "net1", "--idempotency-key", "k1")
	if err != nil || errOut != "" || !strings.Contains(out, "keel operation show op-1") || !strings.Contains(out, "p1 fa:16:3e:00:00:01 10.0.0.5") {
		t.Fatalf("attach: out %q, stderr %q, err %v", out, errOut, err)
	}
	if _, _, err := runCLI(t, srv.URL, "server", "detach-interface", "web", "p1"); err != nil {
		t.Fatalf("detach: %v", err)
	}
	reqs := f.requests()
	if len(reqs) != 2 || reqs[0].body["network"] != "net1" || len(reqs[0].body) != 1 || reqs[0].idemKey != "k1" ||
		reqs[1].method != "DELETE" || reqs[1].path != "/v1/servers/web/interfaces/p1" {
		t.Fatalf("requests %+v", reqs)
	}
	if _, _, err := runCLI(t, srv.URL, "server", "attach-interface", "web"); err == nil || !strings.Contains(err.Error(), "network") {
		t.Fatalf("attach without --network: %v", err)
	}
}
