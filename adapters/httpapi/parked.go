package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/eventlog"
)

// parkedOut is the wire form of a parked commit.
func parkedOut(pc eventlog.ParkedCommit) api.ParkedCommit {
	return api.ParkedCommit{Subscription: pc.Subscription, Sequence: pc.Sequence, AggregateType: pc.AggregateType,
		AggregateID: pc.AggregateID, Key: pc.Key, Attempts: pc.Attempts, Reason: pc.Reason,
		FirstFailedAt: pc.FirstFailedAt, ParkedAt: pc.ParkedAt, State: string(pc.State)}
}

// ParkedOutput is one parked commit.
type ParkedOutput struct {
	Body api.ParkedCommit
}

// ParkedParams name one parked commit.
type ParkedParams struct {
	Subscription string `path:"subscription" maxLength:"256" doc:"Durable subscription name"`
	Sequence     uint64 `path:"seq" minimum:"1" doc:"Stream sequence of the commit"`
}

// ParkedListParams filter and page the parked commits.
type ParkedListParams struct {
	PageParams
	Subscription string `query:"subscription" maxLength:"256" doc:"Only this subscription's parked commits"`
}

func (a *API) registerParked(hapi huma.API) {
	huma.Register(hapi, huma.Operation{OperationID: "list-parked", Method: http.MethodGet, Path: "/v1/admin/parked",
		Summary: "List parked commits", Tags: []string{"admin"},
		Description: "Commits whose saga or agent reaction kept failing and that were parked so that later commits of their key went on, " +
			"ordered by subscription and sequence, a page at a time. Read from the parking lot, not the read model."},
		a.listParked)
	huma.Register(hapi, huma.Operation{OperationID: "retry-parked", Method: http.MethodPost, Path: "/v1/admin/parked/{subscription}/{seq}/retry",
		Summary: "Retry a parked commit", Tags: []string{"admin"}, DefaultStatus: http.StatusAccepted,
		Description: "Marks the commit for retry: its subscription runs the reaction again within its poll period (--park-poll). " +
			"Success removes the record; failure parks it again with one more attempt and the new reason."},
		a.retryParked)
	huma.Register(hapi, huma.Operation{OperationID: "skip-parked", Method: http.MethodPost, Path: "/v1/admin/parked/{subscription}/{seq}/skip",
		Summary: "Skip a parked commit", Tags: []string{"admin"},
		Description: "Removes the record without running the reaction again, and answers with the record as it was. Use it when the reaction is no longer wanted."},
		a.skipParked)
}

func (a *API) listParked(ctx context.Context, in *ParkedListParams) (*ListOutput[api.ParkedCommit], error) {
	if a.Parked == nil {
		return listOut[api.ParkedCommit](nil, ""), nil
	}
	page, next, err := a.Parked.List(ctx, in.Subscription, in.Cursor, in.Limit)
	if errors.Is(err, eventlog.ErrInvalidCursor) {
		return nil, problem(ctx, http.StatusUnprocessableEntity, "cursor: not one this list handed out; pass next_cursor of the previous page")
	}
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	items := make([]api.ParkedCommit, len(page))
	for i, pc := range page {
		items[i] = parkedOut(pc)
	}
	return listOut(items, next), nil
}

func (a *API) retryParked(ctx context.Context, in *ParkedParams) (*ParkedOutput, error) {
	if err := a.parkedErr(ctx, in, a.parked().Retry(ctx, in.Subscription, in.Sequence)); err != nil {
		return nil, err
	}
	pc, err := a.parked().Get(ctx, in.Subscription, in.Sequence)
	if errors.Is(err, eventlog.ErrNotParked) { // the retry already ran and succeeded
		pc = eventlog.ParkedCommit{Subscription: in.Subscription, Sequence: in.Sequence, State: eventlog.StateRetry}
	} else if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &ParkedOutput{Body: parkedOut(pc)}, nil
}

func (a *API) skipParked(ctx context.Context, in *ParkedParams) (*ParkedOutput, error) {
	pc, err := a.parked().Get(ctx, in.Subscription, in.Sequence)
	if err := a.parkedErr(ctx, in, err); err != nil {
		return nil, err
	}
	if err := a.parkedErr(ctx, in, a.parked().Remove(ctx, in.Subscription, in.Sequence)); err != nil {
		return nil, err
	}
	return &ParkedOutput{Body: parkedOut(pc)}, nil
}

// parked is the lot, or one that holds nothing when the node has none.
func (a *API) parked() eventlog.ParkingLot {
	if a.Parked == nil {
		return noLot{}
	}
	return a.Parked
}

// parkedErr maps a lot's error: an unknown commit is a 404.
func (a *API) parkedErr(ctx context.Context, in *ParkedParams, err error) error {
	if errors.Is(err, eventlog.ErrNotParked) {
		return problem(ctx, http.StatusNotFound, fmt.Sprintf("no commit at sequence %d is parked by subscription %s; see GET /v1/admin/parked", in.Sequence, in.Subscription))
	}
	return a.failIf(ctx, err)
}

// noLot is an empty parking lot.
type noLot struct{}

func (noLot) Park(context.Context, eventlog.ParkedCommit) error { return errors.New("no parking lot") }
func (noLot) Get(context.Context, string, uint64) (eventlog.ParkedCommit, error) {
	return eventlog.ParkedCommit{}, eventlog.ErrNotParked
}
func (noLot) List(context.Context, string, string, int) ([]eventlog.ParkedCommit, string, error) {
	return nil, "", nil
}
func (noLot) Retry(context.Context, string, uint64) error  { return eventlog.ErrNotParked }
func (noLot) Remove(context.Context, string, uint64) error { return eventlog.ErrNotParked }
