package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"syscall"

	"github.com/keel-cloud/keel/api"
)

// apiClient is the CLI's view of api.Client: the calls the commands make,
// and errors worded for a terminal (escaped, with hints).
type apiClient struct {
	c *api.Client
	// auth is where the token came from, for the error of a 401.
	auth authInfo
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
	c := api.New(base)
	c.Header = http.Header{"User-Agent": {"keel-cli"}}
	return &apiClient{c: c}
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
	o := api.Opts{Query: cl.query, MinSequence: cl.minSeq, IdempotencyKey: cl.idemKey, IfMatch: int64(cl.ifMatch)}
	return c.send(c.c.Do(ctx, api.Request{Method: cl.method, Path: cl.path, Opts: o, Body: cl.body}, out))
}

// upload streams r as the raw body of a PUT.
func (c *apiClient) upload(ctx context.Context, path string, r io.Reader, size int64, out any) (reply, error) {
	req := api.Request{Method: http.MethodPut, Path: path, Raw: r, RawType: "application/octet-stream", RawLength: size}
	return c.send(c.c.Do(ctx, req, out))
}

// stream opens a long-lived GET (server-sent events); the caller closes
// the body.
func (c *apiClient) stream(ctx context.Context, path string, q url.Values) (*http.Response, error) {
	resp, err := c.c.Stream(ctx, path, api.Opts{Query: q})
	return resp, c.explain(err)
}

func (c *apiClient) send(res *api.Response, err error) (reply, error) {
	var rep reply
	if res != nil {
		rep = reply{status: res.Status, seq: res.Sequence, replayed: res.Replayed, raw: res.Raw}
	}
	return rep, c.explain(err)
}

// explain words an error for a terminal: problems escaped, a 401 as "not
// logged in" with what the CLI sent, failures to reach the API with a hint.
func (c *apiClient) explain(err error) error {
	err = c.explainRaw(err)
	var p *problem
	if errors.As(err, &p) && p.Status == http.StatusUnauthorized {
		return &notLoggedInError{p: p, hint: c.auth.hint()}
	}
	return err
}

// explainRaw is explain without the "not logged in" of a 401: for a
// login, where a 401 is a wrong password.
func (c *apiClient) explainRaw(err error) error {
	var p *api.Problem
	var te *api.TransportError
	switch {
	case errors.As(err, &p):
		return &problem{p}
	case errors.As(err, &te):
		return c.netError(te.Err)
	}
	return err
}

// netError explains a failure to talk to the API at all.
func (c *apiClient) netError(err error) error {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("cannot reach the Keel API at %s: connection refused.\n"+
			"Is it running? Start one with `make run` (or `keel serve`), or point --api or KEEL_API at it", c.c.BaseURL)
	}
	return fmt.Errorf("cannot reach the Keel API at %s: %v", c.c.BaseURL, err)
}

// problem is an RFC 9457 problem answered by the API, shown on a terminal.
type problem struct {
	*api.Problem
}

func (p *problem) Unwrap() error { return p.Problem }

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

// decodeProblem reads an error answer (see api.DecodeProblem).
func decodeProblem(status int, raw []byte) *problem {
	return &problem{api.DecodeProblem(status, http.Header{}, raw)}
}

func firstLine(s string, n int) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}

// isStatus reports whether err is a problem with one of the statuses.
func isStatus(err error, statuses ...int) bool { return api.IsStatus(err, statuses...) }
