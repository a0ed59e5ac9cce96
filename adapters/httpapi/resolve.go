package httpapi

import (
	"context"
	"net/http"
	"sync/atomic"

	"github.com/google/uuid"

	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
)

// resolveUnique turns a UUID or the unique name of a flavor, image, server
// group or host aggregate into an id. Names resolve from the reservations
// and the holder's own stream, not the read model, so a name its caller
// created a moment ago is found however far the projections lag.
func (a *API) resolveUnique(ctx context.Context, kind, ref string) (string, error) {
	if u, err := uuid.Parse(ref); err == nil {
		return u.String(), nil
	}
	if err := domain.CheckName(kind+" id or name", ref); err != nil {
		return "", a.fail(ctx, err)
	}
	if err := a.waitMinSeq(ctx); err != nil {
		return "", err
	}
	id, found, err := a.lookupName(ctx, kind, ref)
	if err != nil {
		return "", a.fail(ctx, err)
	}
	if !found {
		return "", notFound(ctx, kind, ref)
	}
	return id, nil
}

// lookupName finds a unique name where the caller's names live: flavors
// and host aggregates are the cloud's; keypairs and server groups the
// project's; an image is the project's own, else a public one.
func (a *API) lookupName(ctx context.Context, kind, name string) (string, bool, error) {
	switch kind {
	case commands.KindKeypair, commands.KindGroup:
		return a.App.LookupName(ctx, kind, ownProject(ctx), name)
	case commands.KindImage:
		id, found, err := a.App.LookupName(ctx, kind, ownProject(ctx), name)
		if err != nil || found {
			return id, found, err
		}
	}
	return a.App.LookupName(ctx, kind, "", name)
}

// resolve turns a UUID or a name that need not be unique into an id, from
// the read model. Before it says "not found" the read model catches up with
// the head of the log, and the answer is not kept for the Idempotency-Key,
// since a later retry may find what this one did not.
func (a *API) resolve(ctx context.Context, kind, ref string, byName func(name string) ([]string, error)) (string, error) {
	if u, err := uuid.Parse(ref); err == nil {
		return u.String(), nil
	}
	if err := domain.CheckName(kind+" id or name", ref); err != nil {
		return "", a.fail(ctx, err)
	}
	if err := a.waitMinSeq(ctx); err != nil {
		return "", err
	}
	ids, err := byName(ref)
	if err == nil && len(ids) == 0 {
		if err := a.catchUp(ctx); err != nil {
			return "", err
		}
		ids, err = byName(ref)
	}
	if err != nil {
		return "", a.fail(ctx, err)
	}
	switch len(ids) {
	case 0:
		markVolatile(ctx)
		return "", notFound(ctx, kind, ref)
	case 1:
		return ids[0], nil
	default:
		markVolatile(ctx)
		return "", problem(ctx, http.StatusConflict, "more than one "+kind+" is named "+ref+"; use its id")
	}
}

// waitMinSeq honours Keel-Min-Sequence on a mutating call: what it
// checks afterwards in the read model (hosts, zones) includes that write.
func (a *API) waitMinSeq(ctx context.Context) error {
	if seq, _ := ctx.Value(keyMinSeq).(uint64); seq > 0 {
		return a.waitRead(ctx, ReadAfter{MinSeq: seq})
	}
	return nil
}

// catchUp waits, within ReadWait, until the read model has applied every
// commit in the log when it was called.
func (a *API) catchUp(ctx context.Context) error {
	head, err := a.Store.LastSequence(ctx)
	if err != nil {
		return a.fail(ctx, err)
	}
	return a.waitRead(ctx, ReadAfter{MinSeq: head})
}

// markVolatile says that the answer under way depends on what the read
// model held at the time: a refusal built on it is not kept as the answer
// to the request's Idempotency-Key.
func markVolatile(ctx context.Context) {
	if f, ok := ctx.Value(keyVolatile).(*atomic.Bool); ok {
		f.Store(true)
	}
}
