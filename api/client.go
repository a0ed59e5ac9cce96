package api

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
	"time"
)

// The collections of the API, for Path and the generic calls.
const (
	Flavors           = "/v1/flavors"
	Images            = "/v1/images"
	Keypairs          = "/v1/keypairs"
	Servers           = "/v1/servers"
	Operations        = "/v1/operations"
	Hosts             = "/v1/hosts"
	HostCredentials   = "/v1/host-credentials"
	Aggregates        = "/v1/aggregates"
	AvailabilityZones = "/v1/availability-zones"
	ServerGroups      = "/v1/server-groups"
	Events            = "/v1/events"
	Projections       = "/v1/projections"
	Parked            = "/v1/admin/parked"
	Tokens            = "/v1/tokens"
	Projects          = "/v1/projects"
	Users             = "/v1/users"
	WhoamiPath        = "/v1/whoami"
	UsagePath         = "/v1/usage"
	Networks          = "/v1/networks"
	Subnets           = "/v1/subnets"
	Ports             = "/v1/ports"
	SecurityGroups    = "/v1/security-groups"
)

// Path joins a collection and an id or name (escaped), then any further
// segments as they are: Path(Servers, "web 1", "start") is
// "/v1/servers/web%201/start".
func Path(collection, ref string, more ...string) string {
	p := collection + "/" + url.PathEscape(ref)
	for _, m := range more {
		p += "/" + m
	}
	return p
}

// MaxReply bounds how much of an answer the client reads.
const MaxReply = 64 << 20

// Client talks to the Keel API. Its zero value is not usable: set BaseURL.
type Client struct {
	// BaseURL is e.g. http://127.0.0.1:8080, without a trailing slash.
	BaseURL string
	// HTTP sends the requests (nil: http.DefaultClient).
	HTTP *http.Client
	// Header is added to every request (e.g. User-Agent, X-Request-Id).
	Header http.Header
	// Token is sent as Authorization: Bearer ("": none, for a login).
	Token string
}

// WithToken returns a copy of the client that sends token.
func (c *Client) WithToken(token string) *Client {
	cp := *c
	cp.Token = token
	return &cp
}

// New returns a client of the API at base.
func New(base string) *Client {
	return &Client{BaseURL: strings.TrimSuffix(base, "/"), HTTP: &http.Client{}}
}

// Opts are the optional parts of a request.
type Opts struct {
	Query url.Values
	// MinSequence is sent as Keel-Min-Sequence: the read waits until the
	// read model has applied this stream sequence (read your writes).
	MinSequence uint64
	// IdempotencyKey is sent as Idempotency-Key: a retry with the same key
	// is answered as the first attempt was.
	IdempotencyKey string
	// IfMatch is the aggregate version a change is based on (0: none).
	IfMatch int64
}

// Request is one call of the API.
type Request struct {
	Method string
	Path   string // escaped, e.g. Path(Servers, ref)
	Opts
	// Body is sent as JSON when not nil.
	Body any
	// Raw, when not nil, is sent as it is, as RawType (an upload), with
	// RawLength as its length when known (else -1).
	Raw       io.Reader
	RawType   string
	RawLength int64
}

// Response is what the API answered to a call that succeeded.
type Response struct {
	Status int
	// Sequence is Keel-Sequence: the stream sequence of a write's commit,
	// to pass as MinSequence to read it.
	Sequence uint64
	// ETag is the resource's version, for IfMatch (0: none sent).
	ETag int64
	// Replayed: answered from the idempotency store.
	Replayed bool
	Header   http.Header
	// Raw is the body as it came.
	Raw []byte
}

// TransportError is a failure to talk to the API at all.
type TransportError struct {
	BaseURL string
	Err     error
}

func (e *TransportError) Error() string {
	return fmt.Sprintf("cannot reach the Keel API at %s: %v", e.BaseURL, e.Err)
}

func (e *TransportError) Unwrap() error { return e.Err }

// Do sends a request and decodes a JSON answer into out (unless out is nil
// or the answer is 204 No Content). An error answer is a *Problem; a
// failure to reach the API a *TransportError; an answer that does not
// decode into out is an error too, never ignored.
func (c *Client) Do(ctx context.Context, r Request, out any) (*Response, error) {
	req, err := c.request(ctx, r)
	if err != nil {
		return nil, err
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, c.transport(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxReply))
	if err != nil {
		return nil, c.transport(err)
	}
	res := &Response{Status: resp.StatusCode, Header: resp.Header, Raw: raw,
		Replayed: resp.Header.Get("Idempotent-Replayed") == "true"}
	if resp.StatusCode >= 400 {
		return res, DecodeProblem(resp.StatusCode, resp.Header, raw)
	}
	if s := resp.Header.Get("Keel-Sequence"); s != "" {
		if res.Sequence, err = strconv.ParseUint(s, 10, 64); err != nil {
			return res, fmt.Errorf("%s %s: bad Keel-Sequence %q", r.Method, r.Path, s)
		}
	}
	if t := resp.Header.Get("ETag"); t != "" {
		if res.ETag, err = strconv.ParseInt(strings.Trim(strings.TrimPrefix(t, "W/"), `"`), 10, 64); err != nil {
			return res, fmt.Errorf("%s %s: bad ETag %q", r.Method, r.Path, t)
		}
	}
	if out != nil && resp.StatusCode != http.StatusNoContent {
		if err := json.Unmarshal(raw, out); err != nil {
			return res, fmt.Errorf("%s %s: unexpected answer: %w", r.Method, r.Path, err)
		}
	}
	return res, nil
}

// httpClient is c.HTTP, or http.DefaultClient when unset.
func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// Stream opens a long-lived GET (server-sent events); the caller closes
// the body. An error answer is a *Problem.
func (c *Client) Stream(ctx context.Context, path string, o Opts) (*http.Response, error) {
	req, err := c.request(ctx, Request{Method: http.MethodGet, Path: path, Opts: o})
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, c.transport(err)
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxReply))
		if err != nil {
			return nil, c.transport(err)
		}
		return nil, DecodeProblem(resp.StatusCode, resp.Header, raw)
	}
	return resp, nil
}

func (c *Client) request(ctx context.Context, r Request) (*http.Request, error) {
	u := c.BaseURL + r.Path
	if len(r.Query) > 0 {
		u += "?" + r.Query.Encode()
	}
	var body io.Reader
	ctype := ""
	switch {
	case r.Raw != nil:
		body, ctype = r.Raw, r.RawType
	case r.Body != nil:
		b, err := json.Marshal(r.Body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		body, ctype = bytes.NewReader(b), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, u, body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if r.Raw != nil && r.RawLength >= 0 {
		req.ContentLength = r.RawLength
	}
	for k, vs := range c.Header {
		req.Header[k] = append([]string(nil), vs...)
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if r.MinSequence > 0 {
		req.Header.Set("Keel-Min-Sequence", strconv.FormatUint(r.MinSequence, 10))
	}
	if r.IdempotencyKey != "" {
		req.Header.Set("Idempotency-Key", r.IdempotencyKey)
	}
	if r.IfMatch != 0 {
		req.Header.Set("If-Match", `"`+strconv.FormatInt(r.IfMatch, 10)+`"`)
	}
	return req, nil
}

func (c *Client) transport(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &TransportError{BaseURL: c.BaseURL, Err: err}
}

// Get reads one resource.
func Get[T any](ctx context.Context, c *Client, path string, o Opts) (T, *Response, error) {
	var v T
	res, err := c.Do(ctx, Request{Method: http.MethodGet, Path: path, Opts: o}, &v)
	return v, res, err
}

// Create posts body to a collection (or an action's path) and decodes the
// answer.
func Create[T any](ctx context.Context, c *Client, path string, body any, o Opts) (T, *Response, error) {
	var v T
	res, err := c.Do(ctx, Request{Method: http.MethodPost, Path: path, Opts: o, Body: body}, &v)
	return v, res, err
}

// Delete deletes a resource; out, when not nil, receives the answer (a
// server's delete answers with an Accepted).
func Delete(ctx context.Context, c *Client, path string, o Opts, out any) (*Response, error) {
	return c.Do(ctx, Request{Method: http.MethodDelete, Path: path, Opts: o}, out)
}

// ListAll reads every page of a list, following next_cursor to the end
// (limit defaults to the largest page). Every page waits for o.MinSequence.
func ListAll[T any](ctx context.Context, c *Client, path string, o Opts) ([]T, error) {
	q := url.Values{}
	for k, vs := range o.Query {
		q[k] = append([]string(nil), vs...)
	}
	if q.Get("limit") == "" {
		q.Set("limit", "1000")
	}
	o.Query = q
	items := []T{}
	for {
		var page List[T]
		if _, err := c.Do(ctx, Request{Method: http.MethodGet, Path: path, Opts: o}, &page); err != nil {
			return nil, err
		}
		items = append(items, page.Items...)
		if page.NextCursor == "" {
			return items, nil
		}
		if page.NextCursor == q.Get("cursor") {
			return nil, fmt.Errorf("GET %s: the next cursor repeats %q", path, page.NextCursor)
		}
		q.Set("cursor", page.NextCursor)
	}
}

// ConsoleLog returns the tail (at most maxBytes, 0: the server's default)
// of server ref's serial console log, read from its host now.
func ConsoleLog(ctx context.Context, c *Client, ref string, maxBytes int) ([]byte, error) {
	o := Opts{}
	if maxBytes > 0 {
		o.Query = url.Values{"max_bytes": {strconv.Itoa(maxBytes)}}
	}
	res, err := c.Do(ctx, Request{Method: http.MethodGet, Path: Path(Servers, ref, "console-log"), Opts: o}, nil)
	if err != nil {
		return nil, err
	}
	return res.Raw, nil
}

// UsageQuery picks the project and window of GetUsage; empty fields take
// the API's defaults (the token's project, the current UTC month, now).
type UsageQuery struct {
	Project  string
	From, To time.Time
}

// GetUsage reads a project's usage.
func GetUsage(ctx context.Context, c *Client, q UsageQuery, o Opts) (Usage, *Response, error) {
	v := url.Values{}
	for k, vs := range o.Query {
		v[k] = append([]string(nil), vs...)
	}
	if q.Project != "" {
		v.Set("project", q.Project)
	}
	if !q.From.IsZero() {
		v.Set("from", q.From.Format(time.RFC3339Nano))
	}
	if !q.To.IsZero() {
		v.Set("to", q.To.Format(time.RFC3339Nano))
	}
	o.Query = v
	return Get[Usage](ctx, c, UsagePath, o)
}
