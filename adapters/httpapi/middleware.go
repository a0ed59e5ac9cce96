package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

type ctxKey int

const (
	keyRequestID ctxKey = iota
	keyCommandID
	keyMinSeq
	keyVolatile // *atomic.Bool: the answer depends on the read model's lag
)

var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// requestID gives every request an id (the client's X-Request-Id when it is
// sane) and echoes it on the response.
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !validRequestID.MatchString(id) {
			id = uuid.NewString()
		}
		w.Header().Set("X-Request-Id", id)
		ctx := context.WithValue(r.Context(), keyRequestID, id)
		// Mutating calls that name resources by name resolve them in the
		// read model; Keel-Min-Sequence makes them see earlier writes too.
		if v, err := strconv.ParseUint(r.Header.Get("Keel-Min-Sequence"), 10, 64); err == nil {
			ctx = context.WithValue(ctx, keyMinSeq, v)
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(keyRequestID).(string)
	return id
}

// isSecret tells a request whose answer holds a secret: it is never kept
// under an Idempotency-Key (a retry makes new credentials).
func isSecret(r *http.Request) bool {
	return r.Method == http.MethodPost && (r.URL.Path == "/v1/host-credentials" || r.URL.Path == "/v1/tokens")
}

// isUpload reports whether a request is an image upload (streamed, no 1 MiB limit).
func isUpload(r *http.Request) bool {
	return r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/v1/images/") && strings.HasSuffix(r.URL.Path, "/file")
}

// limitBody refuses bodies over MaxBody with a 413 problem.
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isUpload(r) && r.Body != nil {
			if r.ContentLength > MaxBody {
				writeProblem(w, r, http.StatusRequestEntityTooLarge, "request body is larger than 1 MiB")
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
		}
		next.ServeHTTP(w, r)
	})
}

// recoverer turns a panic into a 500 problem that hides the panic's text.
func (a *API) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				a.Log.Error("panic", "request_id", requestIDFrom(r.Context()), "panic", v)
				writeProblem(w, r, http.StatusInternalServerError, "internal error; quote request "+requestIDFrom(r.Context())+" when reporting it")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// writeProblem answers with a problem outside huma's handlers (middleware).
func writeProblem(w http.ResponseWriter, r *http.Request, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_, _ = w.Write(problemBody(status, detail, requestIDFrom(r.Context())))
}

// problemBody is an RFC 9457 problem document naming request id.
func problemBody(status int, detail, id string) []byte {
	b, _ := json.Marshal(map[string]any{
		"title": http.StatusText(status), "status": status, "detail": detail,
		"instance": "urn:keel:request:" + id,
	})
	return append(b, '\n')
}
