package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/danielgtaylor/huma/v2"

	"github.com/keel-cloud/keel/adapters/postgres"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
)

func init() {
	// Every problem names the request it answers, so a user can quote it.
	huma.NewErrorWithContext = func(hctx huma.Context, status int, msg string, errs ...error) huma.StatusError {
		e := huma.NewError(status, msg, errs...)
		if m, ok := e.(*huma.ErrorModel); ok && hctx != nil {
			if id := requestIDFrom(hctx.Context()); id != "" {
				m.Instance = "urn:keel:request:" + id
			}
		}
		return e
	}
}

// fail maps any error to a problem. Domain refusals keep their message;
// anything else is logged and answered with a 500 that hides its text.
func (a *API) fail(ctx context.Context, err error) error {
	var se huma.StatusError
	if errors.As(err, &se) {
		return se
	}
	var stale *commands.StaleError
	if errors.As(err, &stale) {
		return problem(ctx, http.StatusPreconditionFailed, fmt.Sprintf("If-Match: %s %s is now at version %d, not %d; read it again and base the change on version %d",
			stale.Type, stale.ID, stale.Current, stale.Want, stale.Current))
	}
	if commands.IsAuthError(err) {
		return unauthorizedErr(ctx, err.Error())
	}
	var de *domain.Error
	if errors.As(err, &de) {
		switch de.Kind {
		case domain.Invalid:
			return problem(ctx, http.StatusUnprocessableEntity, de.Msg)
		case domain.Conflict:
			return problem(ctx, http.StatusConflict, de.Msg)
		case domain.NotFound:
			return problem(ctx, http.StatusNotFound, de.Msg)
		}
	}
	switch {
	case errors.Is(err, errBodyEnded), errors.Is(err, io.ErrUnexpectedEOF):
		// The client stopped sending: its fault, not an internal error.
		a.Log.Info("request body ended early", "request_id", requestIDFrom(ctx), "err", err)
		return problem(ctx, http.StatusBadRequest, "request body ended early; nothing was kept, send it again whole")
	case errors.Is(err, postgres.ErrNotFound):
		return problem(ctx, http.StatusNotFound, "not found")
	case errors.Is(err, commands.ErrConcurrency), errors.Is(err, commands.ErrBusy):
		// Transient: a 503 is not kept as the answer to an Idempotency-Key.
		return problem(ctx, http.StatusServiceUnavailable, "the resource is being changed by other requests; retry shortly")
	case errors.Is(err, context.Canceled):
		return problem(ctx, 499, "request cancelled")
	}
	a.Log.Error("internal error", "request_id", requestIDFrom(ctx), "err", err)
	return problem(ctx, http.StatusInternalServerError, "internal error; quote request "+requestIDFrom(ctx)+" when reporting it")
}

// errBodyEnded: the client stopped sending a request body before its end.
var errBodyEnded = errors.New("request body ended early")

func problem(ctx context.Context, status int, msg string) error {
	e := huma.NewError(status, msg)
	if m, ok := e.(*huma.ErrorModel); ok {
		if id := requestIDFrom(ctx); id != "" {
			m.Instance = "urn:keel:request:" + id
		}
	}
	return e
}

func notFound(ctx context.Context, kind, id string) error {
	return problem(ctx, http.StatusNotFound, fmt.Sprintf("%s %s not found", kind, id))
}

func u64(v uint64) string { return strconv.FormatUint(v, 10) }
