package node_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

type commitJSON struct {
	Sequence    uint64 `json:"sequence"`
	AggregateID string `json:"aggregate_id"`
	Events      []struct {
		Type string `json:"type"`
	} `json:"events"`
}

func types(cs []commitJSON) []string {
	var out []string
	for _, c := range cs {
		for _, e := range c.Events {
			out = append(out, e.Type)
		}
	}
	return out
}

func TestEventHistoryAndLiveStream(t *testing.T) {
	e := start(t, nil)
	e.seed()

	// Follow the live stream of server events before creating one.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.node.URL+"/v1/events/stream?aggregate_type=server", nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("stream content type %q", ct)
	}
	live, ready := make(chan commitJSON, 64), make(chan struct{})
	go func() {
		defer close(live)
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		event := ""
		for sc.Scan() {
			if name, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				event = name
			}
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			if event == "ready" {
				close(ready)
				continue
			}
			var c commitJSON
			if err := json.Unmarshal([]byte(data), &c); err != nil {
				t.Errorf("stream sent %s event %q: %v", event, data, err)
				return
			}
			live <- c
		}
	}()
	// The stream starts with the next commit once it is ready.
	select {
	case <-ready:
	case <-ctx.Done():
		t.Fatal("the stream sent no ready message")
	}

	acc, _ := e.createServer("watched")
	op := e.waitOp(acc.OperationID, 20*time.Second)
	if op.Status != "succeeded" {
		t.Fatalf("create: %+v", op)
	}
	var seen []commitJSON
	for len(types(seen)) < 3 {
		select {
		case c, ok := <-live:
			if !ok {
				t.Fatalf("stream ended after %v", types(seen))
			}
			seen = append(seen, c)
		case <-ctx.Done():
			t.Fatalf("stream gave only %v", types(seen))
		}
	}
	if got := strings.Join(types(seen), ","); got != "server.created,server.scheduled,server.spawned" {
		t.Fatalf("live stream: %s", got)
	}

	// History, filtered to the server, in stream order, paginated.
	var page struct {
		Items     []commitJSON `json:"items"`
		NextSince uint64       `json:"next_since"`
	}
	e.must(200, e.call("GET", fmt.Sprintf("/v1/events?aggregate_type=server&aggregate_id=%s&limit=2", acc.Server.ID), nil,
		"Keel-Min-Sequence", fmt.Sprint(seen[2].Sequence))).json(t, &page)
	if len(page.Items) != 2 || page.NextSince != page.Items[1].Sequence || types(page.Items)[0] != "server.created" {
		t.Fatalf("first page: %+v", page)
	}
	e.must(200, e.call("GET", fmt.Sprintf("/v1/events?aggregate_id=%s&since=%d", acc.Server.ID, page.NextSince), nil)).json(t, &page)
	if got := strings.Join(types(page.Items), ","); got != "server.spawned" || page.NextSince != 0 {
		t.Fatalf("second page: %s next %d", got, page.NextSince)
	}
	// Filtered by type across aggregates.
	e.must(200, e.call("GET", "/v1/events?type=operation.succeeded", nil)).json(t, &page)
	if len(page.Items) != 1 || page.Items[0].AggregateID != acc.OperationID {
		t.Fatalf("operation.succeeded history: %+v", page.Items)
	}
}
