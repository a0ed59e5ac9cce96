package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/keel-cloud/keel/api"
)

// keel operation show prints a failure's detail (the host's account, for
// admins) after its error, on the operation and per step, escaped like any
// text from the API; an operation without one shows no DETAIL at all.
func TestOperationShowPrintsTheDetail(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	reason := "build failed on 3 hosts; last on h3: the hypervisor could not start the server"
	detail := "virDomainCreate: /var/lib/keel/srv-1/domain.xml: \x1b[2Jdenied\u202e"
	o := api.Operation{ID: "op-1", Kind: "server.create", ResourceType: "server", ResourceID: "srv-1", Status: "failed",
		Error: &reason, Detail: detail, CreatedAt: at, FinishedAt: &at,
		Steps: []api.Step{{Name: "schedule", Status: "compensated"}, {Name: "spawn", Status: "failed", Error: &reason, Detail: detail}}}
	var b bytes.Buffer
	if err := writeOperation(&b, o); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, r := range []rune{0x1b, 0x202e} {
		if strings.ContainsRune(out, r) {
			t.Fatalf("printed %U raw:\n%s", r, out)
		}
	}
	escaped := `virDomainCreate: /var/lib/keel/srv-1/domain.xml: \u001b[2Jdenied\u202e`
	lines := strings.Split(out, "\n")
	var errAt, detailAt, stepDetail int
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "ERROR ") && strings.HasSuffix(l, reason):
			errAt = i
		case strings.HasPrefix(l, "DETAIL ") && strings.HasSuffix(l, escaped):
			detailAt = i
		case strings.HasPrefix(l, "spawn ") && strings.HasSuffix(l, escaped):
			stepDetail = i
		}
	}
	if errAt == 0 || detailAt != errAt+1 || stepDetail == 0 {
		t.Fatalf("want the error, the detail right after it, and the spawn step's detail:\n%s", out)
	}
	if strings.Contains(lines[errAt], "/var/lib") {
		t.Fatalf("the error line shows the detail:\n%s", out)
	}

	b.Reset()
	o.Detail, o.Steps[1].Detail = "", ""
	if err := writeOperation(&b, o); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "DETAIL") {
		t.Fatalf("no detail, yet a DETAIL is shown:\n%s", b.String())
	}
}
