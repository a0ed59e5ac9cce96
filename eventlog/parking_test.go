package eventlog_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/keel-cloud/keel/eventlog"
)

// A handler's error text may be long and in any script: the reason kept is
// at most MaxReason bytes, valid UTF-8, and says it was cut.
func TestBoundReasonCutsOnARuneBoundary(t *testing.T) {
	short := "host refused"
	if got := eventlog.BoundReason(short); got != short {
		t.Fatalf("short reason changed: %q", got)
	}
	for _, long := range []string{strings.Repeat("x", 5000), strings.Repeat("é", 1000), "a" + strings.Repeat("日", 600)} {
		got := eventlog.BoundReason(long)
		if len(got) > eventlog.MaxReason || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") || len(got) < eventlog.MaxReason-6 {
			t.Fatalf("cut %d bytes to %d bytes (valid %v): %q…", len(long), len(got), utf8.ValidString(got), got[:20])
		}
	}
}
