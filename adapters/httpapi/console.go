package httpapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/nats-io/nats.go"

	"github.com/keel-cloud/keel/adapters/agent"
)

// Consoles reads servers' console logs from their hosts.
type Consoles interface {
	Tail(ctx context.Context, host, server string, max int) ([]byte, error)
}

// ConsoleLogOutput is the tail of a serial console log, as text.
type ConsoleLogOutput struct {
	ContentType string `header:"Content-Type"`
	Body        []byte
}

func (a *API) registerConsoles(hapi huma.API) {
	huma.Register(hapi, huma.Operation{OperationID: "get-server-console-log", Method: http.MethodGet, Path: "/v1/servers/{id}/console-log",
		Summary: "The tail of a server's serial console log", Tags: []string{"servers"},
		Description: "Read from the server's host as it is now (text/plain, at most max_bytes from the end). 409 when the server has no host " +
			"or its host keeps no console log (simulated hosts); 503 with Retry-After when the host does not answer."},
		func(ctx context.Context, in *struct {
			ReadAfter
			IDParam
			MaxBytes int `query:"max_bytes" minimum:"1" maximum:"1048576" default:"65536" doc:"How much of the log's end to return"`
		}) (*ConsoleLogOutput, error) {
			if err := a.waitRead(ctx, in.ReadAfter); err != nil {
				return nil, err
			}
			s, err := a.readServer(ctx, in.ID)
			if err != nil {
				return nil, err
			}
			id := s.ID
			if s.Host == nil || *s.Host == "" {
				return nil, problem(ctx, http.StatusConflict, "server "+in.ID+" is on no host ("+s.Status+"): it has no console log")
			}
			if a.Consoles == nil {
				return nil, problem(ctx, http.StatusConflict, "this control plane reads no console logs")
			}
			host := *s.Host
			cctx, cancel := context.WithTimeout(ctx, consoleWait)
			defer cancel()
			log, err := a.Consoles.Tail(cctx, host, id, in.MaxBytes)
			switch {
			case errors.Is(err, agent.ErrNoConsole):
				return nil, problem(ctx, http.StatusConflict, "host "+host+" keeps no console log (a simulated host)")
			case errors.Is(err, agent.ErrNoServer):
				return nil, problem(ctx, http.StatusConflict, "host "+host+" does not hold server "+in.ID+" (yet): no console log")
			case errors.Is(err, nats.ErrNoResponders), errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
				return nil, huma.ErrorWithHeaders(problem(ctx, http.StatusServiceUnavailable, "host "+host+" did not answer; is its agent running?"),
					http.Header{"Retry-After": {"5"}})
			case err != nil:
				a.Log.Warn("console log", "server", id, "host", host, "err", err)
				return nil, problem(ctx, http.StatusBadGateway, "host "+host+" could not give the console log")
			}
			return &ConsoleLogOutput{ContentType: "text/plain; charset=utf-8", Body: log}, nil
		})
}

// consoleWait bounds how long a console-log request waits for the host.
const consoleWait = 5 * time.Second
