package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
)

// ConsoleReader is what a driver whose servers write a serial console log
// offers: the last max bytes of a server's log.
type ConsoleReader interface {
	ConsoleTail(ctx context.Context, id string, max int) ([]byte, error)
}

// DisplayOpener is what a driver whose servers have a display offers: a
// connection to server id's VNC display (the RFB protocol), on the host.
type DisplayOpener interface {
	OpenVNC(ctx context.Context, id string) (net.Conn, error)
}

// ErrNoConsole is the error of a host that keeps no console log or has no
// display for a server (a simulated host, a server not running).
var ErrNoConsole = errors.New("this host keeps no console log")

// MaxConsoleTail bounds one console-log answer.
const MaxConsoleTail = 1 << 20

// ConsoleRequest asks a host for the tail of a server's console log.
type ConsoleRequest struct {
	Server   string `json:"server"`
	MaxBytes int    `json:"max_bytes"`
}

// ConsoleReply is a host's answer: the log's tail, or why there is none.
type ConsoleReply struct {
	Log []byte `json:"log,omitempty"`
	// Error is set when the host has no log to give: "no_server" (the host
	// does not hold it), "no_console" (it keeps none), or another failure.
	Error string `json:"error,omitempty"`
}

// Reply errors.
const (
	ReplyNoServer  = "no_server"
	ReplyNoConsole = "no_console"
)

// answerConsole answers one console-log request for host h.
func (a *Agent) answerConsole(ctx context.Context, h Host, data []byte) []byte {
	var req ConsoleRequest
	reply := ConsoleReply{}
	switch cr, ok := h.Driver.(ConsoleReader); {
	case json.Unmarshal(data, &req) != nil || req.Server == "":
		reply.Error = "malformed request"
	case !ok:
		reply.Error = ReplyNoConsole
	default:
		max := req.MaxBytes
		if max <= 0 || max > MaxConsoleTail {
			max = MaxConsoleTail
		}
		log, err := cr.ConsoleTail(ctx, req.Server, max)
		switch {
		case errors.Is(err, ErrNoServer):
			reply.Error = ReplyNoServer
		case errors.Is(err, ErrNoConsole):
			reply.Error = ReplyNoConsole
		case err != nil:
			a.Log.Warn("console log", "host", h.Info.Name, "server", req.Server, "err", err)
			reply.Error = "the host could not read the console log"
		default:
			reply.Log = log
		}
	}
	out, err := json.Marshal(reply)
	if err != nil {
		return []byte(`{"error":"the host could not answer"}`)
	}
	return out
}

// ConsoleClient asks hosts for console logs over a request function (core
// NATS request/reply in keel serve, on the subject Subject names).
type ConsoleClient struct {
	Request func(ctx context.Context, subject string, data []byte) ([]byte, error)
	Subject func(host string) string
}

// Tail returns the last max bytes of server id's console log on host.
// It fails with ErrNoServer or ErrNoConsole when the host says so.
func (c ConsoleClient) Tail(ctx context.Context, host, id string, max int) ([]byte, error) {
	data, err := json.Marshal(ConsoleRequest{Server: id, MaxBytes: max})
	if err != nil {
		return nil, err
	}
	raw, err := c.Request(ctx, c.Subject(host), data)
	if err != nil {
		return nil, fmt.Errorf("ask host %s for the console log: %w", host, err)
	}
	var reply ConsoleReply
	if err := json.Unmarshal(raw, &reply); err != nil {
		return nil, fmt.Errorf("host %s answered the console-log request with %q: %w", host, raw, err)
	}
	switch reply.Error {
	case "":
		return reply.Log, nil
	case ReplyNoServer:
		return nil, fmt.Errorf("host %s: %w", host, ErrNoServer)
	case ReplyNoConsole:
		return nil, fmt.Errorf("host %s: %w", host, ErrNoConsole)
	default:
		return nil, fmt.Errorf("host %s: %s", host, reply.Error)
	}
}
