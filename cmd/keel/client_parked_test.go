package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/keel-cloud/keel/api"
)

// A reason is a handler's error text: whatever a host said. The table
// keeps it on one line, escaped, and cut.
func TestParkedTableEscapesAndCutsTheReason(t *testing.T) {
	var b bytes.Buffer
	long := strings.Repeat("x", 300)
	items := []api.ParkedCommit{
		{Subscription: "host-work", Sequence: 42, AggregateType: "server", AggregateID: "s1", Attempts: 10,
			State: "parked", Reason: "save: \x1b[2Jdisk\u202e full\nsecond line"},
		{Subscription: "saga-servers-v1", Sequence: 7, AggregateType: "server", AggregateID: "s2", Attempts: 3, State: "retry", Reason: long},
	}
	if err := writeParked(&b, items); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if lines := strings.Count(out, "\n"); lines != 3 {
		t.Fatalf("%d lines, want a header and two rows:\n%s", lines, out)
	}
	for _, r := range []rune{0x1b, 0x202e} {
		if strings.ContainsRune(out, r) {
			t.Fatalf("printed %U raw:\n%s", r, out)
		}
	}
	for _, want := range []string{`save: \u001b[2Jdisk\u202e full second line`, "host-work", "42", "server/s1", "retry",
		strings.Repeat("x", 119) + "…"} {
		if !strings.Contains(out, want) {
			t.Fatalf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, strings.Repeat("x", 120)) {
		t.Fatalf("reason not cut:\n%s", out)
	}
}
