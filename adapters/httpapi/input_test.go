package httpapi

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// problemDoc is the part of a problem the tests read.
type problemDoc struct {
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Instance string `json:"instance"`
}

// checkProblem asserts that res is a problem with status whose detail
// mentions detail and whose instance names the response's X-Request-Id.
func checkProblem(t *testing.T, res *http.Response, status int, detail string) problemDoc {
	t.Helper()
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", res.StatusCode, status, raw)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q: %s", ct, raw)
	}
	var p problemDoc
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatalf("not a problem: %s", raw)
	}
	id := res.Header.Get("X-Request-Id")
	if p.Status != status || p.Title != http.StatusText(status) || id == "" || p.Instance != "urn:keel:request:"+id {
		t.Fatalf("problem %+v with X-Request-Id %q", p, id)
	}
	if !strings.Contains(p.Detail, detail) {
		t.Fatalf("detail %q, want it to mention %q", p.Detail, detail)
	}
	return p
}

func testMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/flavors", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_, _ = w.Write(append([]byte("ok "), body...))
	})
	mux.HandleFunc("POST /v1/flavors", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_, _ = w.Write(append([]byte("ok "), body...))
	})
	mux.HandleFunc("PUT /v1/images/{id}/file", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_, _ = w.Write(append([]byte("ok "), body...))
	})
	return mux
}

func serve(t *testing.T, h http.Handler, method, path, body string) *http.Response {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, path, strings.NewReader(body)))
	return w.Result()
}

func TestRouteErrorsAreProblems(t *testing.T) {
	h := requestID(routeErrors(testMux()))
	checkProblem(t, serve(t, h, "GET", "/v1/nothing", ""), http.StatusNotFound, "no such path: /v1/nothing")
	res := serve(t, h, "DELETE", "/v1/flavors", "")
	if allow := res.Header.Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "POST") {
		t.Fatalf("Allow %q", allow)
	}
	checkProblem(t, res, http.StatusMethodNotAllowed, "method DELETE is not allowed on /v1/flavors; allowed: ")
	// A path is echoed escaped, so the detail carries no control characters.
	p := checkProblem(t, serve(t, h, "GET", "/v1/%1b[2J", ""), http.StatusNotFound, "/v1/%1b[2J")
	if strings.ContainsRune(p.Detail, 0x1b) {
		t.Fatalf("detail %q carries an escape", p.Detail)
	}
	if res := serve(t, h, "GET", "/v1/flavors", ""); res.StatusCode != http.StatusOK {
		t.Fatalf("a matched route answered %d", res.StatusCode)
	}
}

func TestBodiesMustBeUTF8(t *testing.T) {
	h := requestID(utf8Body(testMux()))
	checkProblem(t, serve(t, h, "POST", "/v1/flavors", "{\"name\":\"ab\xff\"}"), http.StatusBadRequest, "not valid UTF-8 (first bad byte at offset 11)")
	checkProblem(t, serve(t, h, "POST", "/v1/flavors", "{\"name\":\"\xed\xa0\x80\"}"), http.StatusBadRequest, "not valid UTF-8 (first bad byte at offset 9)")
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1/flavors", `{"name":"été"}`},
		{"PUT", "/v1/images/x/file", "\xff\xfe raw bytes"}, // image bytes are not text
	} {
		res := serve(t, h, c.method, c.path, c.body)
		got, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK || string(got) != "ok "+c.body {
			t.Fatalf("%s %s: %d %q", c.method, c.path, res.StatusCode, got)
		}
	}
}

func TestBodyThatEndsEarlyIsA400(t *testing.T) {
	h := requestID(utf8Body(testMux()))
	r := httptest.NewRequest("POST", "/v1/flavors", io.MultiReader(strings.NewReader(`{"na`), errReader{io.ErrUnexpectedEOF}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	checkProblem(t, w.Result(), http.StatusBadRequest, "request body ended early: fewer bytes arrived than announced")
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestBodyReaderKeepsTheFirstError(t *testing.T) {
	br := &bodyReader{r: io.MultiReader(strings.NewReader("abc"), errReader{io.ErrUnexpectedEOF})}
	if _, err := io.ReadAll(br); !errors.Is(err, io.ErrUnexpectedEOF) || !errors.Is(br.err, io.ErrUnexpectedEOF) {
		t.Fatalf("ReadAll: %v, kept %v", err, br.err)
	}
	br = &bodyReader{r: strings.NewReader("abc")}
	if _, err := io.ReadAll(br); err != nil || br.err != nil {
		t.Fatalf("a whole body: %v, kept %v", err, br.err)
	}
}

func TestParseCanned(t *testing.T) {
	cases := []struct {
		name, in string
		status   int
		text     string
		ok       bool
	}{
		{"bad request", "HTTP/1.1 400 Bad Request" + cannedHeaders + "400 Bad Request", 400, "400 Bad Request", true},
		{"too large", "HTTP/1.1 431 Request Header Fields Too Large" + cannedHeaders + "431 Request Header Fields Too Large", 431, "431 Request Header Fields Too Large", true},
		{"status error", "HTTP/1.1 400 Bad Request: missing required Host header" + cannedHeaders + "400 Bad Request: missing required Host header", 400, "missing required Host header", true},
		{"transfer encoding", "HTTP/1.1 501 Not Implemented" + cannedHeaders + "Unsupported transfer encoding", 501, "Unsupported transfer encoding", true},
		// A handler's own text/plain answer always has a Date.
		{"handler answer", "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nDate: Mon, 01 Jan 2026 00:00:00 GMT\r\n\r\nno", 0, "", false},
		{"success", "HTTP/1.1 200 OK" + cannedHeaders, 0, "", false},
		{"body bytes", "HTTP/1.1 400 Bad Request", 0, "", false},
		{"short", "HTTP/1.1 4\r\n", 0, "", false},
	}
	for _, c := range cases {
		status, text, ok := parseCanned([]byte(c.in))
		if status != c.status || text != c.text || ok != c.ok {
			t.Errorf("%s: got %d %q %v, want %d %q %v", c.name, status, text, ok, c.status, c.text, c.ok)
		}
	}
}

// rawCall sends raw bytes on a new connection to addr and reads the answer.
func rawCall(t *testing.T, addr, request string) *http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	go func() { _, _ = io.WriteString(conn, request) }() // the server may answer before reading it all
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read answer to %.40q: %v", request, err)
	}
	return res
}

func TestProblemListenerRewritesNetHTTPErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: requestID(routeErrors(testMux())), MaxHeaderBytes: 4096}
	go func() { _ = srv.Serve(ProblemListener(ln)) }()
	t.Cleanup(func() { srv.Close() })
	addr := ln.Addr().String()

	checkProblem(t, rawCall(t, addr, "GET /v1/flavors/%zz HTTP/1.1\r\nHost: x\r\n\r\n"), http.StatusBadRequest, "could not be parsed")
	checkProblem(t, rawCall(t, addr, "GET /v1/flavors HTTP/1.1\r\n\r\n"), http.StatusBadRequest, "missing required Host header")
	big := "GET /v1/flavors HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 64<<10) + "\r\n\r\n"
	checkProblem(t, rawCall(t, addr, big), http.StatusRequestHeaderFieldsTooLarge, "header fields are larger than the server accepts")
	checkProblem(t, rawCall(t, addr, "POST /v1/flavors HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"), http.StatusNotImplemented, "unsupported transfer encoding")
	// Answers from handlers pass unchanged, keep-alive and all.
	res := rawCall(t, addr, "GET /v1/flavors HTTP/1.1\r\nHost: x\r\n\r\n")
	body, _ := io.ReadAll(io.LimitReader(res.Body, 3))
	if res.StatusCode != http.StatusOK || string(body) != "ok " || res.Close {
		t.Fatalf("handler answer: %d %q close=%v", res.StatusCode, body, res.Close)
	}
}
