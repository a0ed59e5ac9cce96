package httpapi

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// ProblemListener wraps the API's listener so that the errors net/http
// answers before any handler runs (a request line or header it cannot
// parse: 400; headers over MaxHeaderBytes: 431; an unknown transfer
// encoding: 501; an unsupported protocol version: 505) are RFC 9457
// problems with a request id, like every other error, instead of text/plain.
func ProblemListener(ln net.Listener) net.Listener { return problemListener{ln} }

type problemListener struct{ net.Listener }

func (l problemListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &problemConn{Conn: c}, nil
}

// problemConn rewrites net/http's canned error answers as they are written.
type problemConn struct{ net.Conn }

// CloseWrite keeps net/http's half-close after a 431 working.
func (c *problemConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *problemConn) Write(p []byte) (int, error) {
	status, text, ok := parseCanned(p)
	if !ok {
		return c.Conn.Write(p)
	}
	if _, err := c.Conn.Write(cannedProblem(status, text)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// cannedHeaders follow the status line of net/http's own error answers,
// written in one piece on the connection. Answers from handlers differ:
// they always carry a Date header.
const cannedHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// parseCanned recognises a canned error answer and returns its status and
// its text (the detail after "NNN Status: " in the status line, or the body).
func parseCanned(p []byte) (status int, text string, ok bool) {
	const proto = "HTTP/1.1 "
	if !bytes.HasPrefix(p, []byte(proto)) {
		return 0, "", false
	}
	eol := bytes.Index(p, []byte("\r\n"))
	if eol < len(proto)+3 || !bytes.HasPrefix(p[eol:], []byte(cannedHeaders)) {
		return 0, "", false
	}
	status, err := strconv.Atoi(string(p[len(proto) : len(proto)+3]))
	if err != nil || status < 400 {
		return 0, "", false
	}
	line := string(p[len(proto):eol])
	if _, detail, found := strings.Cut(line, ": "); found {
		return status, detail, true
	}
	return status, string(p[eol+len(cannedHeaders):]), true
}

// cannedProblem is the problem answer that replaces a canned one.
func cannedProblem(status int, text string) []byte {
	id := uuid.NewString()
	body := problemBody(status, cannedDetail(status, text), id)
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Length: %d\r\nContent-Type: application/problem+json\r\nDate: %s\r\nX-Request-Id: %s\r\n\r\n",
		status, http.StatusText(status), len(body), time.Now().UTC().Format(http.TimeFormat), id)
	b.Write(body)
	return b.Bytes()
}

// cannedDetail explains the canned answers whose text only repeats the status.
func cannedDetail(status int, text string) string {
	switch {
	case status == http.StatusRequestHeaderFieldsTooLarge:
		return "the request's header fields are larger than the server accepts"
	case status == http.StatusBadRequest && text == "400 Bad Request":
		return "the request could not be parsed: a malformed request line (such as a bad percent-escape in the path) or header"
	case status == http.StatusNotImplemented:
		return "unsupported transfer encoding"
	}
	return text
}
