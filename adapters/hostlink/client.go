package hostlink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/keel-cloud/keel/adapters/agent"
	"github.com/keel-cloud/keel/commands"
)

// Client is an agent's link to keel serve (agent.ControlPlane) over NATS,
// with the credentials of one host or of a simulated fleet.
type Client struct {
	nc    *nats.Conn
	creds *Credentials
	log   *slog.Logger
	sim   bool

	// Timeout bounds one request (default 30 s); RetryFor is how long a
	// report or a registration is retried while keel serve does not answer
	// (default 2 minutes).
	Timeout, RetryFor time.Duration
	// ParkAttempts and ParkAfter bound the tries of a failing piece of
	// work before it is parked (defaults eventlog.DefaultParkAttempts and
	// DefaultParkAfter).
	ParkAttempts int
	ParkAfter    time.Duration
}

// Connect connects to the NATS at url with creds, as the agent called name.
func Connect(url string, creds *Credentials, name string, log *slog.Logger, opts ...nats.Option) (*Client, error) {
	hostID := ""
	if creds.Host != Fleet {
		hostID = commands.HostID(creds.Host)
	}
	opts = append([]nats.Option{nats.Name("keel-agent-" + name), nats.MaxReconnects(-1), nats.CustomInboxPrefix(inboxPrefix(hostID))}, opts...)
	if creds.NATS != nil { // none: an external NATS that asks for none
		auth, err := creds.Option()
		if err != nil {
			return nil, err
		}
		opts = append(opts, auth)
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, err
	}
	return NewClient(nc, creds, log), nil
}

// NewClient makes the link on a connection made with creds (and their
// inbox prefix: see Connect).
func NewClient(nc *nats.Conn, creds *Credentials, log *slog.Logger) *Client {
	return &Client{nc: nc, creds: creds, log: log, sim: creds.Host == Fleet, Timeout: 30 * time.Second, RetryFor: 2 * time.Minute}
}

// Close closes the connection.
func (c *Client) Close() { c.nc.Close() }

// Conn is the client's connection.
func (c *Client) Conn() *nats.Conn { return c.nc }

// ErrRefused wraps what keel serve refused, in its words.
var ErrRefused = agent.ErrRefused

// ErrNotMine is the error of a call for a host the credentials are not
// of: the link does not even ask.
var ErrNotMine = errors.New("not this link's host")

func (c *Client) mine(host string) error {
	if !c.sim && host != c.creds.Host {
		return fmt.Errorf("%w: these credentials are host %s's, not %s's", ErrNotMine, c.creds.Host, host)
	}
	return nil
}

// request asks keel serve verb for host and decodes the result into out.
func (c *Client) request(ctx context.Context, host, verb string, in, out any) error {
	if err := c.mine(host); err != nil {
		return err
	}
	data, err := json.Marshal(in)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	m, err := c.nc.RequestWithContext(rctx, HostSubject(commands.HostID(host), verb, c.sim), data)
	if err != nil {
		return fmt.Errorf("ask keel serve to %s: %w", verb, err)
	}
	var r reply
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return fmt.Errorf("keel serve answered %s with %q: %w", verb, m.Data, err)
	}
	if r.Error != "" {
		return fmt.Errorf("%w: %s", ErrRefused, r.Error)
	}
	if out != nil && len(r.Result) > 0 {
		return json.Unmarshal(r.Result, out)
	}
	return nil
}

// retried is request, tried again while keel serve does not answer (a
// restart), but not when it refuses.
func (c *Client) retried(ctx context.Context, host, verb string, in, out any) error {
	deadline := time.Now().Add(c.RetryFor)
	wait := 100 * time.Millisecond
	for {
		err := c.request(ctx, host, verb, in, out)
		if err == nil || errors.Is(err, ErrRefused) || errors.Is(err, ErrNotMine) || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// Register implements agent.ControlPlane.
func (c *Client) Register(ctx context.Context, h agent.HostInfo) error {
	return c.retried(ctx, h.Name, VerbRegister, h, nil)
}

// Report implements agent.ControlPlane.
func (c *Client) Report(ctx context.Context, host string, r agent.WorkReport) error {
	return c.retried(ctx, host, VerbReport, r, nil)
}

// Servers implements agent.ControlPlane.
func (c *Client) Servers(ctx context.Context, host string) (agent.Recorded, error) {
	var rec agent.Recorded
	err := c.request(ctx, host, VerbServers, struct{}{}, &rec)
	return rec, err
}

// Observe implements agent.ControlPlane.
func (c *Client) Observe(ctx context.Context, host string, o agent.Observation) error {
	return c.request(ctx, host, VerbObserve, o, nil)
}

// UnknownGuests implements agent.ControlPlane.
func (c *Client) UnknownGuests(ctx context.Context, host string, names, recorded []string) error {
	return c.request(ctx, host, VerbUnknown, unknownRequest{Guests: names, Recorded: recorded}, nil)
}

// Beat implements agent.ControlPlane.
func (c *Client) Beat(host string, alive bool) error {
	if err := c.mine(host); err != nil {
		return err
	}
	verb := VerbGoodbye
	if alive {
		verb = VerbHeartbeat
	}
	return c.nc.Publish(HostSubject(commands.HostID(host), verb, c.sim), []byte(host))
}

// Flush implements agent.ControlPlane.
func (c *Client) Flush() error { return c.nc.Flush() }

// AnswerConsole implements agent.ControlPlane.
func (c *Client) AnswerConsole(host string, answer func([]byte) []byte) (func(), error) {
	if err := c.mine(host); err != nil {
		return nil, err
	}
	sub, err := c.nc.Subscribe(ConsoleSubject(commands.HostID(host), c.sim), func(m *nats.Msg) {
		_ = m.Respond(answer(m.Data)) // the requester times out if this is lost
	})
	if err != nil {
		return nil, err
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

// Image implements agent.ControlPlane: the image's bytes, a chunk at a time.
func (c *Client) Image(ctx context.Context, host, object string) (io.ReadCloser, error) {
	if err := c.mine(host); err != nil {
		return nil, err
	}
	return &imageReader{c: c, ctx: ctx, host: host, req: imageRequest{Object: object}}, nil
}

type imageReader struct {
	c    *Client
	ctx  context.Context
	host string
	req  imageRequest
	buf  []byte
	eof  bool
}

func (r *imageReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.eof {
			return 0, io.EOF
		}
		var rep imageReply
		if err := r.c.request(r.ctx, r.host, VerbImage, r.req, &rep); err != nil {
			return 0, err
		}
		r.buf, r.eof = rep.Data, rep.EOF
		r.req.Offset += int64(len(rep.Data))
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (r *imageReader) Close() error { return nil }
