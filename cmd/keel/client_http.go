package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
)

// maxReply bounds how much of a JSON answer is read.
const maxReply = 64 << 20

// apiClient talks to the Keel API.
type apiClient struct {
	base string // e.g. http://127.0.0.1:8080, without a trailing slash
	hc   *http.Client
}

// call is one API request.
type call struct {
	method  string
	path    string // escaped, e.g. "/v1/servers/" + url.PathEscape(ref)
	query   url.Values
	body    any    // sent as JSON when not nil
	minSeq  uint64 // Keel-Min-Sequence: read your writes
	idemKey string // Idempotency-Key
	ifMatch uint64 // If-Match: the aggregate version the change is based on (0: none)
}

// reply is what the API answered.
type reply struct {
	status   int
	seq      uint64 // Keel-Sequence of a mutating call
	replayed bool   // answered from the idempotency store
	raw      []byte
}

func newAPIClient(base string) *apiClient {
	return &apiClient{base: base, hc: &http.Client{}}
}

// normalizeAPI turns what users type (host:port, a trailing /v1 copied
// from `keel serve`'s banner) into a base URL.
func normalizeAPI(s string) (string, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("--api %q is not an http(s) URL such as http://127.0.0.1:8080", s)
	}
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/v1")
	u.RawQuery, u.Fragment = "", ""
	return strings.TrimSuffix(u.String(), "/"), nil
}

// get is a GET of a JSON resource.
func (c *apiClient) get(ctx context.Context, path string, q url.Values, minSeq uint64, out any) (reply, error) {
	return c.doJSON(ctx, call{method: http.MethodGet, path: path, query: q, minSeq: minSeq}, out)
}

// doJSON sends a call, with its body as JSON, and decodes a JSON answer
// into out (when out is not nil). An error answer becomes a *problem.
func (c *apiClient) doJSON(ctx context.Context, cl call, out any) (reply, error) {
	var body io.Reader
	ctype := ""
	if cl.body != nil {
		b, err := json.Marshal(cl.body)
		if err != nil {
			return reply{}, fmt.Errorf("encode request: %w", err)
		}
		body, ctype = bytes.NewReader(b), "application/json"
	}
	req, err := c.request(ctx, cl, body, ctype)
	if err != nil {
		return reply{}, err
	}
	return c.send(req, out)
}

// upload streams r as the raw body of a PUT.
func (c *apiClient) upload(ctx context.Context, path string, r io.Reader, size int64, out any) (reply, error) {
	req, err := c.request(ctx, call{method: http.MethodPut, path: path}, r, "application/octet-stream")
	if err != nil {
		return reply{}, err
	}
	req.ContentLength = size
	return c.send(req, out)
}

// stream opens a long-lived GET (server-sent events); the caller closes
// the body.
func (c *apiClient) stream(ctx context.Context, path string, q url.Values) (*http.Response, error) {
	req, err := c.request(ctx, call{method: http.MethodGet, path: path, query: q}, nil, "")
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.netError(err)
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxReply))
		return nil, decodeProblem(resp.StatusCode, raw)
	}
	return resp, nil
}

func (c *apiClient) request(ctx context.Context, cl call, body io.Reader, ctype string) (*http.Request, error) {
	u := c.base + cl.path
	if len(cl.query) > 0 {
		u += "?" + cl.query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, u, body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	req.Header.Set("User-Agent", "keel-cli")
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if cl.minSeq > 0 {
		req.Header.Set("Keel-Min-Sequence", strconv.FormatUint(cl.minSeq, 10))
	}
	if cl.idemKey != "" {
		req.Header.Set("Idempotency-Key", cl.idemKey)
	}
	if cl.ifMatch != 0 {
		req.Header.Set("If-Match", `"`+strconv.FormatUint(cl.ifMatch, 10)+`"`)
	}
	return req, nil
}

func (c *apiClient) send(req *http.Request, out any) (reply, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return reply{}, c.netError(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	if err != nil {
		return reply{}, c.netError(err)
	}
	rep := reply{status: resp.StatusCode, raw: raw, replayed: resp.Header.Get("Idempotent-Replayed") == "true"}
	rep.seq, _ = strconv.ParseUint(resp.Header.Get("Keel-Sequence"), 10, 64)
	if resp.StatusCode >= 400 {
		return rep, decodeProblem(resp.StatusCode, raw)
	}
	if out != nil && len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return rep, fmt.Errorf("%s %s: unexpected answer: %w", req.Method, req.URL.Path, err)
		}
	}
	return rep, nil
}

// netError explains a failure to talk to the API at all.
func (c *apiClient) netError(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("cannot reach the Keel API at %s: connection refused.\n"+
			"Is it running? Start one with `make run` (or `keel serve`), or point --api or KEEL_API at it", c.base)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("cannot reach the Keel API at %s: %v", c.base, err)
}

// problem is an RFC 9457 problem answered by the API.
type problem struct {
	Title    string          `json:"title"`
	Status   int             `json:"status"`
	Detail   string          `json:"detail"`
	Instance string          `json:"instance"`
	Errors   []problemDetail `json:"errors"`
}

// problemDetail is one entry of a problem's errors.
type problemDetail struct {
	Message  string `json:"message"`
	Location string `json:"location"`
}

// Error reads "<status> <title>: <detail>", then one line per error. What
// the API sent is escaped (see escapeText): it may quote a request.
func (p *problem) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", p.Status, escapeText(p.Title, false))
	if p.Detail != "" {
		b.WriteString(": " + escapeText(p.Detail, false))
	}
	for _, e := range p.Errors {
		b.WriteString("\n  - ")
		if e.Location != "" {
			b.WriteString(escapeText(e.Location, false) + ": ")
		}
		b.WriteString(escapeText(e.Message, false))
	}
	return b.String()
}

// decodeProblem reads an error answer; a body that is not a problem (a
// proxy's HTML page, a plain-text 404) still gives a readable error.
func decodeProblem(status int, raw []byte) *problem {
	p := &problem{}
	if err := json.Unmarshal(raw, p); err != nil || (p.Title == "" && p.Detail == "") {
		p = &problem{Detail: firstLine(string(raw), 200)}
	}
	if p.Status == 0 {
		p.Status = status
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	return p
}

func firstLine(s string, n int) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}

// isStatus reports whether err is a problem with one of the statuses.
func isStatus(err error, statuses ...int) bool {
	var p *problem
	if !errors.As(err, &p) {
		return false
	}
	for _, s := range statuses {
		if p.Status == s {
			return true
		}
	}
	return false
}
