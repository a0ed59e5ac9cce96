package hostlink_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keel-cloud/keel/adapters/hostlink"
	"github.com/keel-cloud/keel/adapters/jetstream/jstest"
	"github.com/keel-cloud/keel/commands"
)

// A console client that reads the display too slowly loses its session
// with an error once keel serve can keep no more of the display's bytes;
// what it read up to then is the display's stream, in order, with no
// hole.
func TestSlowConsoleClientEndsWithoutAHole(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e := jstest.Server(t, "")
	js, err := jetstream.New(e.Conn)
	must(t, err)
	keys, err := hostlink.OpenKeys(ctx, js, 1, nil, nil, slog.New(slog.DiscardHandler))
	must(t, err)
	_, err = keys.Issue(ctx, "h-1")
	must(t, err)
	id := commands.HostID("h-1")
	// The host's side, by hand: it opens at once, then sends numbered
	// chunks as fast as it can.
	const chunks = 10000
	_, err = e.Conn.Subscribe("keel.agent."+id+".display", func(m *nats.Msg) {
		var req struct{ Session string }
		must(t, json.Unmarshal(m.Data, &req))
		_ = m.Respond([]byte(`{}`))
		go func() {
			for i := range chunks {
				b := make([]byte, 8)
				binary.BigEndian.PutUint64(b, uint64(i))
				_ = e.Conn.Publish("keel.host."+id+".display."+req.Session+".out", b)
			}
		}()
	})
	must(t, err)
	s, err := hostlink.Displays{NC: e.Conn, Keys: keys}.Open(ctx, "h-1", "srv")
	must(t, err)
	defer s.Close()
	time.Sleep(2 * time.Second) // the client reads nothing meanwhile
	var next uint64
	buf := make([]byte, 8)
	for {
		_, err := io.ReadFull(s, buf)
		if errors.Is(err, hostlink.ErrDisplayOverrun) {
			break
		}
		must(t, err)
		if got := binary.BigEndian.Uint64(buf); got != next {
			t.Fatalf("chunk %d after %d: a hole in the stream", got, next-1)
		}
		next++
	}
	if next == 0 || next >= chunks {
		t.Fatalf("read %d chunks before the overrun; want some, not all %d", next, chunks)
	}
}
