package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync/atomic"

	keeljs "github.com/keel-cloud/keel/adapters/jetstream"
	"github.com/keel-cloud/keel/commands"
)

// idemRecord is the first answer given to an Idempotency-Key.
type idemRecord struct {
	BodyHash string            `json:"body_sha256"`
	Status   int               `json:"status"`
	Headers  map[string]string `json:"headers"`
	Body     []byte            `json:"body"`
}

var replayedHeaders = []string{"Content-Type", "Keel-Sequence", "Location"}

// idempotency makes mutating calls safe to retry. With an Idempotency-Key,
// the command id derives from the key, so even a retry that arrives after a
// crash (before the answer was recorded) finds the commit already made; the
// first answer is kept in a JetStream KV bucket and replayed to later
// requests with the same key and body. The same key with another body is a
// 422. Image uploads are streamed and not covered, nor are answers that
// hold a secret (host credentials).
func (a *API) idempotency(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		mutating := r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodDelete || r.Method == http.MethodPatch
		if !mutating || isUpload(r) || isSecret(r) || key == "" {
			ctx := context.WithValue(r.Context(), keyCommandID, commands.NewID())
			next.ServeHTTP(w, r.WithContext(ctx))
			return
		}
		if len(key) > 255 || !printable(key) {
			writeProblem(w, r, http.StatusBadRequest, "Idempotency-Key must be 1 to 255 printable ASCII characters")
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				writeProblem(w, r, http.StatusRequestEntityTooLarge, "request body is larger than 1 MiB")
				return
			}
			writeProblem(w, r, http.StatusBadRequest, "could not read the request body")
			return
		}
		sum := sha256.Sum256(body)
		bodyHash := hex.EncodeToString(sum[:])
		// A key is the caller's own: another user's same key is another request.
		caller, _ := principalFrom(r.Context())
		scope := sha256.Sum256([]byte(caller.UserID + "\n" + r.Method + " " + r.URL.Path + "\n" + key))
		kvKey := hex.EncodeToString(scope[:])
		if prev, err := a.Idem.Get(r.Context(), kvKey); err != nil {
			a.Log.Error("idempotency lookup", "err", err)
			writeProblem(w, r, http.StatusServiceUnavailable, "idempotency store unavailable; retry")
			return
		} else if prev != nil {
			replay(w, r, prev, bodyHash)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		ctx := context.WithValue(r.Context(), keyCommandID, commands.DeriveID("idempotency", r.Method, r.URL.Path, key))
		volatile := new(atomic.Bool)
		ctx = context.WithValue(ctx, keyVolatile, volatile)
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r.WithContext(ctx))
		if rec.status >= 500 || rec.status == http.StatusTooManyRequests || rec.status == 499 {
			return // transient: the retry should try again
		}
		if volatile.Load() && rec.status >= 400 {
			return // refused on what the read model held then: a retry may succeed
		}
		stored := idemRecord{BodyHash: bodyHash, Status: rec.status, Headers: map[string]string{}, Body: rec.buf.Bytes()}
		for _, h := range replayedHeaders {
			if v := w.Header().Get(h); v != "" {
				stored.Headers[h] = v
			}
		}
		b, _ := json.Marshal(stored)
		if err := a.Idem.Create(context.WithoutCancel(r.Context()), kvKey, b); err != nil && !errors.Is(err, keeljs.ErrKeyExists) {
			a.Log.Warn("store idempotency record", "err", err)
		}
	})
}

func replay(w http.ResponseWriter, r *http.Request, prev []byte, bodyHash string) {
	var rec idemRecord
	if err := json.Unmarshal(prev, &rec); err != nil {
		writeProblem(w, r, http.StatusInternalServerError, "stored idempotent answer is unreadable")
		return
	}
	if rec.BodyHash != bodyHash {
		writeProblem(w, r, http.StatusUnprocessableEntity, "this Idempotency-Key was already used with a different request body; use a new key for a new request")
		return
	}
	for k, v := range rec.Headers {
		w.Header().Set(k, v)
	}
	w.Header().Set("Idempotent-Replayed", "true")
	w.WriteHeader(rec.Status)
	_, _ = w.Write(rec.Body)
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// commandID returns the command id chosen for this request.
func commandID(ctx context.Context) string {
	if id, ok := ctx.Value(keyCommandID).(string); ok {
		return id
	}
	return commands.NewID()
}

// recorder keeps a copy of what a handler wrote.
type recorder struct {
	http.ResponseWriter
	status int
	buf    bytes.Buffer
}

func (r *recorder) WriteHeader(s int) {
	r.status = s
	r.ResponseWriter.WriteHeader(s)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.buf.Write(b)
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (read deadlines).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
