package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func serve(t *testing.T, h http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return New(srv.URL)
}

func TestProblemIsDecodedWithStatusTitleDetailAndRequestID(t *testing.T) {
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.Header().Set("Retry-After", "2")
		w.WriteHeader(http.StatusConflict)
		fmt.Fprint(w, `{"title":"Conflict","status":409,"detail":"flavor m1 exists","instance":"urn:keel:request:r-1",
			"errors":[{"message":"taken","location":"body.name","value":"m1"}]}`)
	})
	_, _, err := Get[Flavor](context.Background(), c, Path(Flavors, "m1"), Opts{})
	var p *Problem
	if !errors.As(err, &p) {
		t.Fatalf("want a *Problem, got %T %v", err, err)
	}
	if p.Status != 409 || p.Title != "Conflict" || p.Detail != "flavor m1 exists" || p.RequestID != "r-1" || p.RetryAfter != "2" {
		t.Errorf("problem %+v", p)
	}
	if want := "409 Conflict: flavor m1 exists\n  - body.name: taken"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
	if !IsStatus(err, 404, 409) || IsStatus(err, 404) {
		t.Error("IsStatus does not match the problem's status")
	}
}

func TestAnErrorThatIsNotAProblemStillReads(t *testing.T) {
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "r-2")
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprint(w, "<html>upstream down\nmore</html>")
	})
	_, err := c.Do(context.Background(), Request{Method: "GET", Path: Hosts}, nil)
	var p *Problem
	if !errors.As(err, &p) || p.Status != 502 || p.Title != "Bad Gateway" || p.Detail != "<html>upstream down" || p.RequestID != "r-2" {
		t.Fatalf("got %T %+v", err, p)
	}
}

func TestRequestHeadersAreSentAndResponseHeadersRead(t *testing.T) {
	var got http.Header
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		w.Header().Set("Keel-Sequence", "42")
		w.Header().Set("ETag", `"7"`)
		w.Header().Set("Idempotent-Replayed", "true")
		fmt.Fprint(w, `{"id":"h1","name":"node-1"}`)
	})
	c.Header = http.Header{"User-Agent": {"test"}}
	h, res, err := Get[Host](context.Background(), c, Path(Hosts, "node-1"),
		Opts{MinSequence: 41, IdempotencyKey: "k1", IfMatch: 6})
	if err != nil {
		t.Fatal(err)
	}
	if h.Name != "node-1" || res.Sequence != 42 || res.ETag != 7 || !res.Replayed || res.Status != 200 {
		t.Errorf("host %+v, response %+v", h, res)
	}
	for k, want := range map[string]string{"Keel-Min-Sequence": "41", "Idempotency-Key": "k1", "If-Match": `"6"`, "User-Agent": "test"} {
		if got.Get(k) != want {
			t.Errorf("%s: sent %q, want %q", k, got.Get(k), want)
		}
	}
}

func TestNoMinSequenceHeaderWhenZero(t *testing.T) {
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if _, ok := r.Header["Keel-Min-Sequence"]; ok {
			w.WriteHeader(400)
		}
		fmt.Fprint(w, `{"items":[],"next_cursor":""}`)
	})
	if _, err := ListAll[Server](context.Background(), c, Servers, Opts{}); err != nil {
		t.Fatal(err)
	}
}

func TestListAllFollowsCursorsUntilDone(t *testing.T) {
	var seen []string
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.URL.RawQuery)
		if r.Header.Get("Keel-Min-Sequence") != "9" {
			t.Errorf("page %q without Keel-Min-Sequence", r.URL.RawQuery)
		}
		switch r.URL.Query().Get("cursor") {
		case "":
			fmt.Fprint(w, `{"items":[{"id":"a"},{"id":"b"}],"next_cursor":"c1"}`)
		case "c1":
			fmt.Fprint(w, `{"items":[{"id":"c"}],"next_cursor":"c2"}`)
		default:
			fmt.Fprint(w, `{"items":[],"next_cursor":""}`)
		}
	})
	items, err := ListAll[Server](context.Background(), c, Servers, Opts{MinSequence: 9, Query: map[string][]string{"name": {"web"}}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range items {
		ids = append(ids, s.ID)
	}
	if strings.Join(ids, ",") != "a,b,c" {
		t.Errorf("items %v", ids)
	}
	want := []string{"limit=1000&name=web", "cursor=c1&limit=1000&name=web", "cursor=c2&limit=1000&name=web"}
	if strings.Join(seen, " ") != strings.Join(want, " ") {
		t.Errorf("queries %q, want %q", seen, want)
	}
}

func TestListAllRefusesACursorThatRepeats(t *testing.T) {
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"items":[{"id":"a"}],"next_cursor":"same"}`)
	})
	if _, err := ListAll[Server](context.Background(), c, Servers, Opts{}); err == nil {
		t.Fatal("a cursor that never advances should end the list with an error")
	}
}

func TestAMalformedBodyIsAnError(t *testing.T) {
	for _, body := range []string{`{"id":`, ``, `{"vcpus":"two"}`} {
		c := serve(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, body) })
		if _, _, err := Get[Flavor](context.Background(), c, Path(Flavors, "m1"), Opts{}); err == nil {
			t.Errorf("body %q: no error", body)
		}
	}
}

func TestNoContentDecodesNothing(t *testing.T) {
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodDelete || r.URL.EscapedPath() != "/v1/flavors/m%201" {
			t.Errorf("%s %s", r.Method, r.URL)
		}
		w.Header().Set("Keel-Sequence", "5")
		w.WriteHeader(http.StatusNoContent)
	})
	res, err := Delete(context.Background(), c, Path(Flavors, "m 1"), Opts{}, &struct{}{})
	if err != nil || res.Sequence != 5 {
		t.Fatalf("%v %+v", err, res)
	}
}

func TestUnreachableIsATransportError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	_, err := New(srv.URL).Do(context.Background(), Request{Method: "GET", Path: Hosts}, nil)
	var te *TransportError
	if !errors.As(err, &te) || te.BaseURL != srv.URL {
		t.Fatalf("got %T %v", err, err)
	}
}

func TestCreateSendsJSON(t *testing.T) {
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Type") != "application/json" || r.Method != http.MethodPost {
			t.Errorf("%s with %q", r.Method, r.Header.Get("Content-Type"))
		}
		w.Header().Set("Keel-Sequence", "3")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"id":"f1","name":"m1","vcpus":1}`)
	})
	f, res, err := Create[Flavor](context.Background(), c, Flavors, FlavorBody{Name: "m1", VCPUs: 1, RAMMiB: 1}, Opts{})
	if err != nil || f.ID != "f1" || res.Sequence != 3 || res.Status != 201 {
		t.Fatalf("%v %+v %+v", err, f, res)
	}
}
