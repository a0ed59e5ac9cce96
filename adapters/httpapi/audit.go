package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/keel-cloud/keel/audit"
	"github.com/keel-cloud/keel/commands"
)

// Auditor keeps audit records: the audit stream (jetstream.AuditLog).
type Auditor interface {
	// Publish appends one record and returns once it is stored.
	Publish(ctx context.Context, id string, data []byte) (uint64, error)
	// LastSequence is the sequence of the last record stored.
	LastSequence(ctx context.Context) (uint64, error)
}

// auditWait bounds how long a request waits for its audit record to be
// stored.
const auditWait = 5 * time.Second

// maxReason bounds the reason of a failure kept in a record.
const maxReason = 300

// auditNote is what the layers inside the audit middleware learn about a
// request and the middleware records: who made it, and what it named.
type auditNote struct {
	principal *commands.Principal
	login     string // the user name a password login gave
	userID    string // the user a login stood for
	tokenID   string // the token a login issued (its id, never its secret)
	project   string // the project a login's token acts in
}

type auditKey struct{}

func noteFrom(ctx context.Context) *auditNote {
	n, _ := ctx.Value(auditKey{}).(*auditNote)
	return n
}

// noteLogin records who a password login claimed to be and, when it
// succeeded, the token it issued.
func noteLogin(ctx context.Context, name, userID, tokenID, project string) {
	if n := noteFrom(ctx); n != nil {
		n.login, n.userID, n.tokenID, n.project = name, userID, tokenID, project
	}
}

// notePrincipal records the caller once its token is checked.
func notePrincipal(ctx context.Context, p commands.Principal) {
	if n := noteFrom(ctx); n != nil {
		n.principal = &p
	}
}

// audited reports whether a request with this answer gets a record: every
// refused authentication and authorisation, and every command (a call of
// an API operation other than a read), whatever its answer, answers from
// the idempotency store included. 429s are not: a flood would become a
// flood of records (the metrics count them).
func audited(method, op string, status int) bool {
	switch {
	case status == http.StatusTooManyRequests:
		return false
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return true
	}
	return isCommand(method) && op != ""
}

// audit records requests in the audit trail before their answer leaves:
// the record of a command is stored before its status line is sent, so
// an acknowledged command always has one. A command whose record cannot be
// stored is answered 503 instead; a refused authentication is refused all
// the same and its record logged.
func (a *API) audit(next http.Handler) http.Handler {
	if a.Audit == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		note := &auditNote{}
		aw := &auditWriter{ResponseWriter: w, a: a, r: r, note: note, at: time.Now()}
		aw.pattern, aw.op = a.operationOf(r)
		defer func() {
			if v := recover(); v != nil {
				if !aw.sent {
					aw.status = http.StatusInternalServerError
					aw.record(nil)
				}
				panic(v)
			}
		}()
		next.ServeHTTP(aw, r.WithContext(context.WithValue(r.Context(), auditKey{}, note)))
		if !aw.sent {
			if aw.status == 0 {
				aw.status = http.StatusOK
			}
			aw.commit(nil)
		}
	})
}

// operationOf is the route pattern a request matches and its operation id
// ("" for what is no API operation).
func (a *API) operationOf(r *http.Request) (pattern, op string) {
	if a.mux == nil {
		return "", ""
	}
	_, pattern = a.mux.Handler(r)
	return pattern, a.ops[pattern]
}

// auditWriter holds back the status line until the request's record is
// stored. A failure's record waits for the first body bytes (the problem,
// whose title and detail are its reason).
type auditWriter struct {
	http.ResponseWriter
	a       *API
	r       *http.Request
	note    *auditNote
	at      time.Time
	pattern string
	op      string
	status  int  // the status the handler wrote, held back
	sent    bool // the status line went out
	refused bool // the record could not be stored: the answer became a 503
}

func (w *auditWriter) WriteHeader(code int) {
	if w.sent || w.status != 0 || code < 200 {
		if code < 200 && !w.sent {
			w.ResponseWriter.WriteHeader(code)
		}
		return
	}
	w.status = code
	if code < 400 || !audited(w.r.Method, w.op, code) {
		w.commit(nil)
	}
}

func (w *auditWriter) Write(b []byte) (int, error) {
	if !w.sent {
		if w.status == 0 {
			w.status = http.StatusOK
		}
		w.commit(b)
	}
	if w.refused {
		return len(b), nil // the handler's answer is replaced by the 503
	}
	return w.ResponseWriter.Write(b)
}

// Flush keeps streams flushable; it sends what is held back first.
func (w *auditWriter) Flush() {
	if !w.sent && w.status != 0 {
		w.commit(nil)
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok && !w.refused {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *auditWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// commit stores the record, if the request gets one, then sends the
// status line (or the 503 that replaces it).
func (w *auditWriter) commit(body []byte) {
	w.sent = true
	if audited(w.r.Method, w.op, w.status) && !w.record(body) && isCommand(w.r.Method) {
		w.refused = true
		h := w.ResponseWriter.Header()
		for _, k := range []string{"Location", "Keel-Sequence", "ETag", "Idempotent-Replayed", "Cache-Control"} {
			h.Del(k)
		}
		h.Set("Retry-After", "1")
		h.Set("Content-Type", "application/problem+json")
		h.Del("Content-Length")
		w.ResponseWriter.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.ResponseWriter.Write(problemBody(http.StatusServiceUnavailable,
			"the audit trail could not record this request, so it is not acknowledged; it may have taken effect: retry with the same Idempotency-Key",
			requestIDFrom(w.r.Context())))
		return
	}
	w.ResponseWriter.WriteHeader(w.status)
}

// isCommand reports whether a request's method makes it a command (not a
// read).
func isCommand(m string) bool {
	return m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions
}

// record builds and stores the request's record; false when it could not
// be stored.
func (w *auditWriter) record(body []byte) bool {
	rec := w.build(body)
	data, err := json.Marshal(rec)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(w.r.Context()), auditWait)
		defer cancel()
		_, err = w.a.Audit.Publish(ctx, rec.ID, data)
	}
	if err != nil {
		w.a.Log.Error("audit record not stored", "request_id", rec.RequestID, "operation", rec.Operation, "status", rec.Status,
			"actor", rec.Actor.UserName, "source", rec.Source, "err", err)
		return false
	}
	return true
}

// build is the record of the request as answered so far.
func (w *auditWriter) build(body []byte) audit.Record {
	rec := audit.Record{
		ID: uuid.NewString(), At: w.at.UTC().Truncate(time.Microsecond),
		Source: sourceAddr(w.r), RequestID: requestIDFrom(w.r.Context()), Operation: w.op,
		Method: w.r.Method, Path: w.r.URL.EscapedPath(), Status: w.status, Outcome: audit.Success,
		Target: target(w.pattern, w.r.URL.Path, w.ResponseWriter.Header().Get("Location")),
	}
	if w.status >= 300 {
		rec.Outcome, rec.Reason = audit.Failure, reason(w.status, body)
	}
	n := w.note
	switch {
	case n.principal != nil:
		p := n.principal
		rec.Actor = audit.Actor{UserID: p.UserID, UserName: p.UserName, TokenID: p.TokenID}
		rec.Project = p.Project
	case n.login != "":
		rec.Actor = audit.Actor{UserID: n.userID, UserName: n.login}
		rec.Project = n.project
	}
	if n.tokenID != "" && rec.Target.ID == "" {
		rec.Target.ID = n.tokenID // the token issued (its id, never its secret)
	}
	return rec
}

// target is the resource a request names: the last fixed segment of its
// route before the first parameter, and that parameter's value; for a
// route with no parameter (a create), its collection and the id in the
// answer's Location.
func target(pattern, path, location string) audit.Target {
	_, route, _ := strings.Cut(pattern, " ")
	ps, rs := strings.Split(strings.Trim(route, "/"), "/"), strings.Split(strings.Trim(path, "/"), "/")
	var t audit.Target
	for i, seg := range ps {
		if strings.HasPrefix(seg, "{") {
			if i < len(rs) {
				t.ID = rs[i]
			}
			break
		}
		if i > 0 { // past "v1"
			t.Type = seg
		}
	}
	if pattern == "" && len(rs) > 1 {
		t.Type = rs[1]
	}
	if t.ID == "" && location != "" {
		if ls := strings.Split(strings.Trim(location, "/"), "/"); len(ls) == 3 && ls[1] == t.Type {
			t.ID, _ = url.PathUnescape(ls[2])
		}
	}
	return t
}

// reason is a failure's reason from its problem body: title and detail
// (never the problem's errors, which can echo what was sent).
func reason(status int, body []byte) string {
	var p struct{ Title, Detail string }
	_ = json.Unmarshal(body, &p)
	s := p.Title
	if p.Detail != "" {
		s += ": " + p.Detail
	}
	if s == "" {
		s = http.StatusText(status)
	}
	if len(s) > maxReason {
		s = s[:maxReason]
	}
	return s
}
