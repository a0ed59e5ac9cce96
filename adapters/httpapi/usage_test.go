package httpapi

import (
	"strings"
	"testing"
	"time"
)

// The window defaults to the current UTC month up to now; times are RFC
// 3339 or UTC dates; an empty, backwards or too long window is refused in
// words a user can act on.
func TestUsageWindow(t *testing.T) {
	now := time.Date(2025, 3, 17, 9, 30, 0, 0, time.UTC)
	from, to, err := usageWindow("", "", now)
	if err != nil || !from.Equal(time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)) || !to.Equal(now) {
		t.Errorf("defaults: %v .. %v, %v; want 2025-03-01 .. now", from, to, err)
	}
	from, to, err = usageWindow("2025-02-01", "2025-03-01T01:00:00+01:00", now)
	if err != nil || !from.Equal(time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)) || !to.Equal(time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)) || to.Location() != time.UTC {
		t.Errorf("a date and an offset time: %v .. %v, %v; want February in UTC", from, to, err)
	}
	for _, c := range []struct{ from, to, says string }{
		{"yesterday", "", `from "yesterday" is not a time`},
		{"", "2025-13-01", `to "2025-13-01" is not a time`},
		{"2025-03-02", "2025-03-01", "must be before to"},
		{"2025-03-01", "2025-03-01", "must be before to"},
		{"2024-01-01", "2025-03-01", "longer than 366 days"},
	} {
		if _, _, err := usageWindow(c.from, c.to, now); err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("from %q to %q: %v; want an error saying %q", c.from, c.to, err, c.says)
		}
	}
}
