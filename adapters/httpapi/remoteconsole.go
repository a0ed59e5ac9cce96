package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/coder/websocket"
	"github.com/danielgtaylor/huma/v2"
	"github.com/nats-io/nats.go"

	"github.com/keel-cloud/keel/adapters/agent"
	"github.com/keel-cloud/keel/api"
)

// Displays opens console sessions to servers' displays on their hosts.
type Displays interface {
	// HasDisplays tells whether host's servers have displays (a simulated
	// host's have none).
	HasDisplays(host string) bool
	// Open starts a session with the display of server on host; it fails
	// with agent.ErrNoServer when the host does not hold the server and
	// with agent.ErrNoConsole when it has no display for it.
	Open(ctx context.Context, host, server string) (io.ReadWriteCloser, error)
}

// TokenStore keeps single-use tokens.
type TokenStore interface {
	Create(ctx context.Context, key string, v []byte) error
	// Take returns a token's value once, then nil.
	Take(ctx context.Context, key string) ([]byte, error)
}

// DefaultConsoleTTL is how long a console URL may wait to be opened.
const DefaultConsoleTTL = 30 * time.Second

type consoleToken struct {
	Server  string    `json:"server"`
	Host    string    `json:"host"`
	Expires time.Time `json:"expires"`
}

// ConsoleOutput is a console URL.
type ConsoleOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         api.RemoteConsole
}

func (a *API) registerRemoteConsole(hapi huma.API, mux *http.ServeMux) {
	huma.Register(hapi, huma.Operation{OperationID: "get-server-console", Method: http.MethodGet, Path: "/v1/servers/{id}/console",
		Summary: "A short-lived URL of the server's graphical console (VNC over a websocket)", Tags: []string{"servers"},
		Description: "The URL is a websocket of keel serve that relays to the server's display on its host (RFB, as noVNC speaks it; " +
			"subprotocol binary accepted). It opens once, within expires_at (30 s). " +
			"409 when the server is on no host or its host has no displays (simulated hosts)."},
		func(ctx context.Context, in *struct {
			ReadAfter
			IDParam
		}) (*ConsoleOutput, error) {
			if err := a.waitRead(ctx, in.ReadAfter); err != nil {
				return nil, err
			}
			s, err := a.readServer(ctx, in.ID)
			if err != nil {
				return nil, err
			}
			if s.Host == nil || *s.Host == "" {
				return nil, problem(ctx, http.StatusConflict, "server "+in.ID+" is on no host ("+s.Status+"): it has no console")
			}
			host := *s.Host
			if a.Displays == nil || a.ConsoleTokens == nil || !a.Displays.HasDisplays(host) {
				return nil, problem(ctx, http.StatusConflict, "host "+host+" has no displays (a simulated host): server "+in.ID+" has no console")
			}
			raw := make([]byte, 32)
			if _, err := rand.Read(raw); err != nil {
				return nil, a.fail(ctx, err)
			}
			token := base64.RawURLEncoding.EncodeToString(raw)
			ttl := a.ConsoleTTL
			if ttl <= 0 {
				ttl = DefaultConsoleTTL
			}
			exp := time.Now().Add(ttl).UTC()
			rec, _ := json.Marshal(consoleToken{Server: s.ID, Host: host, Expires: exp})
			if err := a.ConsoleTokens.Create(ctx, token, rec); err != nil {
				return nil, a.fail(ctx, err)
			}
			out := &ConsoleOutput{CacheControl: "no-store"}
			out.Body = api.RemoteConsole{Protocol: "vnc", Type: "novnc", URL: wsBase(ctx) + "/v1/console/" + token, ExpiresAt: exp}
			return out, nil
		})
	mux.HandleFunc("GET /v1/console/{token}", a.consoleSession)
}

// consoleSession is the websocket of a console URL: it takes the token
// (once), opens the display on the server's host, and relays until either
// side closes.
func (a *API) consoleSession(w http.ResponseWriter, r *http.Request) {
	raw, err := a.ConsoleTokens.Take(r.Context(), r.PathValue("token"))
	if err != nil {
		a.Log.Warn("console token", "err", err)
		writeProblem(w, r, http.StatusServiceUnavailable, "console tokens cannot be read now; retry shortly")
		return
	}
	var tok consoleToken
	if raw == nil || json.Unmarshal(raw, &tok) != nil || time.Now().After(tok.Expires) {
		writeProblem(w, r, http.StatusForbidden, "this console URL is not valid: it is unknown, expired (it opens once, within 30 s) or already used; "+
			"ask GET /v1/servers/{id}/console for another")
		return
	}
	octx, cancel := context.WithTimeout(r.Context(), consoleWait)
	display, err := a.Displays.Open(octx, tok.Host, tok.Server)
	cancel()
	switch {
	case errors.Is(err, agent.ErrNoServer):
		writeProblem(w, r, http.StatusConflict, "host "+tok.Host+" does not hold server "+tok.Server+": no console")
		return
	case errors.Is(err, agent.ErrNoConsole):
		writeProblem(w, r, http.StatusConflict, "server "+tok.Server+" has no display now (is it running?)")
		return
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		w.Header().Set("Retry-After", "5")
		writeProblem(w, r, http.StatusServiceUnavailable, "host "+tok.Host+" did not answer; is its agent running?")
		return
	case err != nil:
		a.Log.Warn("console", "server", tok.Server, "host", tok.Host, "err", err)
		writeProblem(w, r, http.StatusBadGateway, "host "+tok.Host+" could not open the console")
		return
	}
	defer display.Close()
	// The token is the capability: any origin may use it (noVNC is often
	// served from elsewhere).
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"binary"}, InsecureSkipVerify: true})
	if err != nil {
		return // Accept answered
	}
	ws.SetReadLimit(1 << 20)
	a.Log.Info("console session opened", "server", tok.Server, "host", tok.Host, "request_id", requestIDFrom(r.Context()))
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		defer stop()
		for {
			_, data, err := ws.Read(ctx)
			if err != nil {
				return
			}
			if _, err := display.Write(data); err != nil {
				return
			}
		}
	}()
	go func() { <-ctx.Done(); display.Close() }()
	buf := make([]byte, 64<<10)
	for {
		n, err := display.Read(buf)
		if n > 0 {
			if werr := ws.Write(ctx, websocket.MessageBinary, buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	stop()
	_ = ws.Close(websocket.StatusNormalClosure, "console closed")
	a.Log.Info("console session closed", "server", tok.Server, "host", tok.Host)
}

// wsBaseKey keys the websocket base URL of where the client reached the API
// (ws:// or wss://, and the host it asked for), for console URLs.
type wsBaseKey struct{}

// withBase records where the client reached the API.
func withBase(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme := "ws://"
		if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
			scheme = "wss://"
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), wsBaseKey{}, scheme+r.Host)))
	})
}

func wsBase(ctx context.Context) string {
	b, _ := ctx.Value(wsBaseKey{}).(string)
	return b
}
