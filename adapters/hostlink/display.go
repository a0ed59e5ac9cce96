package hostlink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/keel-cloud/keel/adapters/agent"
	"github.com/keel-cloud/keel/commands"
)

// A console session relays a server's display (VNC) between keel serve
// and the server's host over core NATS, never the event log:
//
//	keel.agent.H.display                  serve → agent: open {server, session}
//	keel.agent.H.display.<session>.in     serve → agent: bytes for the display
//	keel.host.H.display.<session>.out     agent → serve: bytes from the display
//
// An empty message with the header Keel-Close ends the session, from
// either side. Each side publishes in order on one connection, so the
// bytes arrive in order.

const (
	displayChunk = 32 << 10
	closeHeader  = "Keel-Close"
)

var sessionRE = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)

func displaySubject(hostID string, sim bool) string { return spaceOf(sim).agent + hostID + ".display" }

func displayIn(hostID, session string, sim bool) string {
	return spaceOf(sim).agent + hostID + ".display." + session + ".in"
}

func displayOut(hostID, session string, sim bool) string {
	return spaceOf(sim).host + hostID + ".display." + session + ".out"
}

type displayRequest struct {
	Server  string `json:"server"`
	Session string `json:"session"`
}

type displayReply struct {
	Error string `json:"error,omitempty"` // ReplyNoServer, ReplyNoConsole, or why
}

// ServeDisplays implements agent.ControlPlane: it opens the display a
// console session asks for and relays its bytes until either side closes.
func (c *Client) ServeDisplays(host string, open func(ctx context.Context, server string) (io.ReadWriteCloser, error)) (func(), error) {
	if err := c.mine(host); err != nil {
		return nil, err
	}
	hostID := commands.HostID(host)
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	sub, err := c.nc.Subscribe(displaySubject(hostID, c.sim), func(m *nats.Msg) {
		var req displayRequest
		reply := func(r displayReply) {
			data, _ := json.Marshal(r)
			_ = m.Respond(data)
		}
		if json.Unmarshal(m.Data, &req) != nil || req.Server == "" || !sessionRE.MatchString(req.Session) {
			reply(displayReply{Error: "malformed request"})
			return
		}
		octx, ocancel := context.WithTimeout(ctx, 10*time.Second)
		conn, err := open(octx, req.Server)
		ocancel()
		switch {
		case errors.Is(err, agent.ErrNoServer):
			reply(displayReply{Error: agent.ReplyNoServer})
			return
		case errors.Is(err, agent.ErrNoConsole):
			reply(displayReply{Error: agent.ReplyNoConsole})
			return
		case err != nil:
			c.log.Warn("console: open the display", "host", host, "server", req.Server, "err", err)
			reply(displayReply{Error: "the host could not open the display"})
			return
		}
		s := &relay{nc: c.nc, out: displayOut(hostID, req.Session, c.sim), conn: conn, closed: make(chan struct{})}
		in, err := c.nc.Subscribe(displayIn(hostID, req.Session, c.sim), s.fromServe)
		if err != nil {
			conn.Close()
			reply(displayReply{Error: "the host could not open the session"})
			return
		}
		s.in = in
		reply(displayReply{})
		wg.Add(1)
		go func() { defer wg.Done(); s.toServe(ctx) }()
	})
	if err != nil {
		cancel()
		return nil, err
	}
	return func() { _ = sub.Unsubscribe(); cancel(); wg.Wait() }, nil
}

// relay is the host's side of one console session.
type relay struct {
	nc     *nats.Conn
	out    string
	conn   io.ReadWriteCloser
	in     *nats.Subscription
	once   sync.Once
	closed chan struct{}
	heard  atomic.Int64 // unix nanos of the last message from keel serve
}

// displayIdle ends a session keel serve sent nothing for: a VNC client
// asks for screen updates all the time, so silence means keel serve (or
// the client) is gone without a word.
const displayIdle = 2 * time.Minute

func (s *relay) fromServe(m *nats.Msg) {
	s.heard.Store(time.Now().UnixNano())
	if m.Header.Get(closeHeader) != "" {
		s.close(false)
		return
	}
	if _, err := s.conn.Write(m.Data); err != nil {
		s.close(true)
	}
}

func (s *relay) toServe(ctx context.Context) {
	s.heard.Store(time.Now().UnixNano())
	go func() {
		t := time.NewTicker(displayIdle / 4)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				s.close(true)
				return
			case <-s.closed:
				return
			case <-t.C:
				if time.Since(time.Unix(0, s.heard.Load())) > displayIdle {
					s.close(true)
					return
				}
			}
		}
	}()
	buf := make([]byte, displayChunk)
	for {
		n, err := s.conn.Read(buf)
		if n > 0 {
			if perr := s.nc.Publish(s.out, append([]byte(nil), buf[:n]...)); perr != nil {
				err = perr
			}
		}
		if err != nil {
			s.close(true)
			return
		}
	}
}

// close ends the session, telling the other side when tell is set.
func (s *relay) close(tell bool) {
	s.once.Do(func() {
		close(s.closed)
		s.conn.Close()
		if s.in != nil {
			_ = s.in.Unsubscribe()
		}
		if tell {
			_ = s.nc.PublishMsg(&nats.Msg{Subject: s.out, Header: nats.Header{closeHeader: {"1"}}})
		}
	})
}

// Displays opens console sessions to the displays of servers on their
// hosts, in keel serve.
type Displays struct {
	NC   *nats.Conn
	Keys *Keys
}

// HasDisplays tells whether host's servers have displays: a real host's
// do, a simulated one's do not.
func (d Displays) HasDisplays(host string) bool { return d.Keys.Own(commands.HostID(host)) }

// Open starts a console session to the display of server on host. It fails
// with agent.ErrNoServer or agent.ErrNoConsole when the host says so, and
// with nats.ErrNoResponders when no agent answers for the host.
func (d Displays) Open(ctx context.Context, host, server string) (io.ReadWriteCloser, error) {
	if !d.HasDisplays(host) {
		return nil, fmt.Errorf("host %s is simulated: %w", host, agent.ErrNoConsole)
	}
	hostID, sim := commands.HostID(host), false
	session := uuid.NewString()
	// A chunk dropped would corrupt the RFB stream: the channel holds
	// 8,192 chunks (up to 256 MiB of display updates) the client has not
	// read yet, and a session whose client falls further behind is ended
	// (Read returns an error) rather than fed a stream with a hole.
	out := make(chan *nats.Msg, 8192)
	overflow := make(chan struct{})
	var lost atomic.Bool
	sub, err := d.NC.Subscribe(displayOut(hostID, session, sim), func(m *nats.Msg) {
		if lost.Load() {
			return // nothing after a hole
		}
		select {
		case out <- m:
		default:
			lost.Store(true)
			close(overflow)
		}
	})
	if err != nil {
		return nil, err
	}
	_ = sub.SetPendingLimits(-1, -1) // the channel above is the bound
	data, _ := json.Marshal(displayRequest{Server: server, Session: session})
	m, err := d.NC.RequestWithContext(ctx, displaySubject(hostID, sim), data)
	if err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("ask host %s for the display: %w", host, err)
	}
	var r displayReply
	if err := json.Unmarshal(m.Data, &r); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("host %s answered the display request with %q: %w", host, m.Data, err)
	}
	switch r.Error {
	case "":
	case agent.ReplyNoServer:
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("host %s: %w", host, agent.ErrNoServer)
	case agent.ReplyNoConsole:
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("host %s: %w", host, agent.ErrNoConsole)
	default:
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("host %s: %s", host, r.Error)
	}
	return &serveSession{nc: d.NC, in: displayIn(hostID, session, sim), sub: sub, out: out, stop: make(chan struct{}), overflow: overflow}, nil
}

// ErrDisplayOverrun ends a console session whose client read the display
// too slowly: chunks were lost, and the stream cannot go on.
var ErrDisplayOverrun = errors.New("the console client fell too far behind the display; session ended")

// serveSession is keel serve's side of one console session.
type serveSession struct {
	nc       *nats.Conn
	in       string
	sub      *nats.Subscription
	out      chan *nats.Msg
	stop     chan struct{} // closed by Close
	overflow chan struct{} // closed when a chunk could not be kept
	buf      []byte
	once     sync.Once
	done     bool
}

func (s *serveSession) Read(p []byte) (int, error) {
	for len(s.buf) == 0 {
		if s.done {
			return 0, io.EOF
		}
		select {
		case m := <-s.out:
			if m.Header.Get(closeHeader) != "" {
				s.done = true
				continue
			}
			s.buf = m.Data
		case <-s.stop:
			s.done = true
		case <-s.overflow:
			if len(s.out) == 0 {
				return 0, ErrDisplayOverrun
			}
		}
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	return n, nil
}

func (s *serveSession) Write(p []byte) (int, error) {
	for off := 0; off < len(p); off += displayChunk {
		end := min(off+displayChunk, len(p))
		if err := s.nc.Publish(s.in, append([]byte(nil), p[off:end]...)); err != nil {
			return off, err
		}
	}
	return len(p), nil
}

// Close ends the session and tells the host.
func (s *serveSession) Close() error {
	s.once.Do(func() {
		_ = s.nc.PublishMsg(&nats.Msg{Subject: s.in, Header: nats.Header{closeHeader: {"1"}}})
		_ = s.sub.Unsubscribe()
		close(s.stop)
	})
	return nil
}
