// Package httpapi is Keel's REST API (huma v2, OpenAPI 3.1 at /openapi.json).
// Mutating calls become commands (package commands) and answer with the
// commit's stream sequence in Keel-Sequence; every GET reads the Postgres
// read model, after waiting, within a bound, for Keel-Min-Sequence.
//
// It maps errors to RFC 9457 problems in one place (errors.go); internal
// error text never reaches a client.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	keeljs "github.com/keel-cloud/keel/adapters/jetstream"
	"github.com/keel-cloud/keel/adapters/postgres"
	"github.com/keel-cloud/keel/billing"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/eventlog"
	"github.com/keel-cloud/keel/metrics"
	"github.com/keel-cloud/keel/projections"
)

// MaxBody is the largest request body accepted, image uploads aside.
const MaxBody = 1 << 20

// API holds what the handlers need.
type API struct {
	App    *commands.App
	Read   *postgres.ReadModel
	Runner *projections.Runner
	Store  *keeljs.Store
	Images *keeljs.Images
	Idem   *keeljs.KV
	// Auth checks bearer tokens (commands.App; nil: every token is refused).
	Auth Authenticator
	// Limits bounds the request rate of each token and the logins of each
	// source address (zero: the defaults).
	Limits Limits
	limits *rateLimits
	// Parked holds the commits parked by sagas and agents (nil: none).
	Parked eventlog.ParkingLot
	Log    *slog.Logger
	// Metrics records requests and is served at /metrics (nil: none).
	Metrics *metrics.Set
	// Backlog, when set, refuses new servers while the saga or the
	// projections are too far behind (503 with Retry-After).
	Backlog *Backlog
	// ReadWait bounds how long a GET waits for Keel-Min-Sequence.
	ReadWait time.Duration
	// Ready reports whether the dependencies answer.
	Ready func(ctx context.Context) error
	// Consoles reads console logs from the hosts (nil: none).
	Consoles Consoles
	// HostKeys issues the credentials a host's agent connects with (nil:
	// none are issued).
	HostKeys HostKeys
	// Displays and ConsoleTokens serve graphical consoles (nil: none);
	// ConsoleTTL is how long a console URL may wait to be opened (default
	// DefaultConsoleTTL).
	Displays      Displays
	ConsoleTokens TokenStore
	ConsoleTTL    time.Duration
	// Prices is the price table usage is billed at (zero: every cost is 0).
	Prices billing.Prices
	// Audit keeps the audit trail (nil: no requests are audited, and the
	// audit endpoints answer 503).
	Audit Auditor

	mux *http.ServeMux
	ops map[string]string // route pattern -> operation id
}

// Version is the API version shown in the OpenAPI document.
const Version = "0.1.0"

// Handler returns the HTTP handler with every route.
func (a *API) Handler() http.Handler {
	if a.ReadWait == 0 {
		a.ReadWait = 10 * time.Second
	}
	mux := http.NewServeMux()
	a.limits = newRateLimits(a.Limits)
	api := humago.New(mux, apiConfig())
	api.UseMiddleware(enforce(api))
	a.registerFlavors(api)
	a.registerImages(api)
	a.registerKeypairs(api)
	a.registerServers(api)
	a.registerInterfaces(api)
	a.registerConsoles(api)
	a.registerRemoteConsole(api, mux)
	a.registerOperations(api)
	a.registerEvents(api)
	a.registerAdmin(api)
	a.registerParked(api)
	a.registerHosts(api)
	a.registerHostCredentials(api)
	a.registerGroups(api)
	a.registerAggregates(api)
	a.registerIdentity(api)
	a.registerAudit(api)
	a.registerUsage(api)
	a.registerNetworks(api)
	a.registerPorts(api)
	a.registerSecurityGroups(api)
	a.registerRouters(api)
	a.registerFloatingIPs(api)
	finishDocument(api.OpenAPI())
	a.mux, a.ops = mux, operationIDs(api.OpenAPI())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	mux.HandleFunc("GET /readyz", a.readyz)
	mux.HandleFunc("GET /docs", docsPage)
	mux.Handle("GET /metrics", cloudAdminOnly(a.Metrics.Handler()))
	h := bodyDeadline(routeErrors(mux)) // the body read deadline ends with the body
	h = a.idempotency(h)
	h = a.limited(h)
	h = a.authenticate(h) // before idempotency: a key is kept per user
	h = a.audit(h)        // outside authentication: refused tokens are audited
	h = utf8Body(h)
	h = limitBody(h)
	h = a.recoverer(h)
	h = a.observe(mux, h) // access log and request metrics
	h = requestID(h)
	h = withBase(h)
	return h
}

// operationIDs maps each route pattern ("POST /v1/servers", as humago
// registers it on the mux) to its operation id.
func operationIDs(o *huma.OpenAPI) map[string]string {
	ids := map[string]string{}
	for path, item := range o.Paths {
		for method, op := range operations(item) {
			ids[method+" "+path] = op.OperationID
		}
	}
	return ids
}

func (a *API) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if a.Ready != nil {
		if err := a.Ready(r.Context()); err != nil {
			a.Log.Warn("not ready", "err", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status":"unavailable"}`))
			return
		}
	}
	_, _ = w.Write([]byte(`{"status":"ready"}`))
}

func docsPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(`<!doctype html><html><head><title>Keel API</title></head><body>
<h1>Keel API</h1><p>The OpenAPI 3.1 document is at <a href="/openapi.json">/openapi.json</a> (also <a href="/openapi.yaml">/openapi.yaml</a>);
its OpenAPI 3.0 form, for tools that read only 3.0, is at <a href="/openapi-3.0.json">/openapi-3.0.json</a> (also <a href="/openapi-3.0.yaml">/openapi-3.0.yaml</a>).
Load either into any OpenAPI viewer; this page loads nothing from the internet.
Prometheus metrics are at <a href="/metrics">/metrics</a>.</p></body></html>`))
}

// ReadAfter is embedded in GET inputs: read-your-writes.
type ReadAfter struct {
	MinSeqHeader uint64 `header:"Keel-Min-Sequence" doc:"Wait until the read model has applied this stream sequence (from a Keel-Sequence header)"`
	MinSeq       uint64 `query:"min_seq" doc:"Same as the Keel-Min-Sequence header"`
}

func (a *API) waitRead(ctx context.Context, r ReadAfter) error {
	seq := max(r.MinSeq, r.MinSeqHeader)
	if seq == 0 {
		return nil
	}
	if ok, err := a.Runner.WaitFor(ctx, seq, 0); err != nil || ok {
		return a.failIf(ctx, err)
	}
	// A sequence the log has not reached yet will not come by waiting: the
	// client made it up, or read it from another log.
	head, err := a.Store.LastSequence(ctx)
	if err != nil {
		return a.fail(ctx, err)
	}
	if seq > head {
		markVolatile(ctx)
		return problem(ctx, http.StatusUnprocessableEntity, "Keel-Min-Sequence "+u64(seq)+" is beyond the end of the event log (sequence "+u64(head)+"); pass the Keel-Sequence a write answered with")
	}
	ok, err := a.Runner.WaitFor(ctx, seq, a.ReadWait)
	if err != nil {
		return a.fail(ctx, err)
	}
	if !ok {
		return huma.ErrorWithHeaders(
			problem(ctx, http.StatusServiceUnavailable, "the read model has not reached sequence "+u64(seq)+" within "+a.ReadWait.String()+"; retry shortly"),
			http.Header{"Retry-After": {"1"}})
	}
	return nil
}

// failIf is fail for a non-nil error, else nil.
func (a *API) failIf(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	return a.fail(ctx, err)
}

// PageParams are embedded in list inputs.
type PageParams struct {
	Limit  int    `query:"limit" minimum:"1" maximum:"1000" default:"50" doc:"Page size"`
	Cursor string `query:"cursor" maxLength:"512" doc:"next_cursor of the previous page"`
}

func (p PageParams) page() postgres.Page { return postgres.Page{Limit: p.Limit, Cursor: p.Cursor} }

// Written is embedded in mutating outputs.
type Written struct {
	Sequence uint64 `header:"Keel-Sequence" doc:"Stream sequence of the commit; pass it as Keel-Min-Sequence to read your write"`
}

// written is the Written of a change whose command made more commits after
// seq (a port's delete gives its addresses and quota back, a router's
// change adds or deletes its ports): the log's head once they are made,
// so that a read after it sees all of them. On error, seq.
func (a *API) written(ctx context.Context, seq uint64) Written {
	head, err := a.Store.LastSequence(ctx)
	if err != nil {
		return Written{seq}
	}
	return Written{max(seq, head)}
}
