package monitors

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/keel-cloud/keel/domain/host"
)

// What the liveness monitor does for one host, given what it recorded and
// what it heard of the host's agent.
func TestLivenessDecides(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	l := &Liveness{Timeout: 30 * time.Second, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	up, down := HostLiveness{ID: "h", Name: "h"}, HostLiveness{ID: "h", Name: "h", Down: true}
	for _, c := range []struct {
		name  string
		host  HostLiveness
		heard heard
		now   time.Time
		want  string // "down", "up" or ""
	}{
		{"beating host stays up", up, heard{last: t0, beat: true}, t0.Add(time.Second), ""},
		{"silent host goes down", up, heard{last: t0, beat: true}, t0.Add(31 * time.Second), "down"},
		{"down host that beats comes up", down, heard{last: t0, beat: true}, t0.Add(time.Second), "up"},
		{"agent said goodbye: down at once", up, heard{last: t0, beat: true, gone: true, since: t0}, t0, "down"},
		{"down after goodbye stays down", down, heard{last: t0, beat: true, gone: true, since: t0}, t0, ""},
		{"up host not heard since the monitor started has the timeout", up, heard{last: t0}, t0.Add(10 * time.Second), ""},
		{"up host not heard since the monitor started goes down after it", up, heard{last: t0}, t0.Add(31 * time.Second), "down"},
		{"down host is not trusted before its first heartbeat", down, heard{last: t0}, t0.Add(time.Second), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := ""
			switch l.decide(c.host, c.heard, c.now).(type) {
			case host.MarkDown:
				got = "down"
			case host.MarkUp:
				got = "up"
			case nil:
			default:
				t.Fatal("unexpected command")
			}
			if got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}

// A heartbeat after a goodbye (the agent came back) outweighs it.
func TestLivenessHeardAfterGoodbye(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	l := &Liveness{Now: func() time.Time { return now }}
	l.Beat("h")
	now = now.Add(time.Second)
	l.Goodbye("h")
	if a := l.heard("h"); !a.gone {
		t.Fatalf("after goodbye: %+v", a)
	}
	now = now.Add(time.Second)
	l.Beat("h")
	if a := l.heard("h"); a.gone || !a.beat {
		t.Fatalf("after a new heartbeat: %+v", a)
	}
}
