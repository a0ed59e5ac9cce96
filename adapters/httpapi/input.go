package httpapi

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// utf8Body refuses request bodies that are not valid UTF-8 with a 400
// problem. encoding/json would otherwise replace each bad byte with U+FFFD
// and store a name the client never sent. Image uploads are raw bytes and
// not checked. It reads the body (at most MaxBody, after limitBody) and
// hands the handlers a copy.
func utf8Body(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isUpload(r) || r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			writeBodyError(w, r, err)
			return
		}
		if !utf8.Valid(body) {
			at := invalidUTF8At(body)
			writeProblem(w, r, http.StatusBadRequest, "the request body is not valid UTF-8 (first bad byte at offset "+strconv.Itoa(at)+"); JSON must be UTF-8")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

func writeBodyError(w http.ResponseWriter, r *http.Request, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		writeProblem(w, r, http.StatusRequestEntityTooLarge, "request body is larger than 1 MiB")
		return
	}
	writeProblem(w, r, http.StatusBadRequest, "request body ended early: "+bodyErrorText(err))
}

// bodyErrorText says what went wrong reading a body without internal text.
func bodyErrorText(err error) string {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "fewer bytes arrived than announced"
	}
	return "the connection failed while reading it"
}

// invalidUTF8At returns the offset of the first byte that is not valid UTF-8.
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// routeErrors answers the requests http.ServeMux would refuse itself (no
// route: 404; a route without that method: 405 with Allow) with a problem
// instead of its text/plain answer. Matched requests go to the mux as is.
func routeErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		probe := &statusProbe{header: http.Header{}}
		h.ServeHTTP(probe, r)
		switch probe.status {
		case http.StatusNotFound:
			writeProblem(w, r, http.StatusNotFound, "no such path: "+r.URL.EscapedPath()+"; the API is described at /openapi.json")
		case http.StatusMethodNotAllowed:
			allow := probe.header.Get("Allow")
			w.Header().Set("Allow", allow)
			writeProblem(w, r, http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed on "+r.URL.EscapedPath()+"; allowed: "+strings.ReplaceAll(allow, ",", ", "))
		default:
			mux.ServeHTTP(w, r)
		}
	})
}

// statusProbe records the status and headers a handler answers with and
// discards its body.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header { return p.header }

func (p *statusProbe) WriteHeader(status int) {
	if p.status == 0 {
		p.status = status
	}
}

func (p *statusProbe) Write(b []byte) (int, error) {
	p.WriteHeader(http.StatusOK)
	return len(b), nil
}
