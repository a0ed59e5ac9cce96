package commands

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/flavor"
	"github.com/keel-cloud/keel/domain/hostaggregate"
	"github.com/keel-cloud/keel/domain/image"
	"github.com/keel-cloud/keel/domain/servergroup"
)

// NameStore is the port to the name reservations (a JetStream KV bucket).
// Names of flavors and images are unique: a set-wide rule no single
// aggregate can check, so the reservation is taken with an atomic create
// before the aggregate's first commit.
type NameStore interface {
	Create(ctx context.Context, key string, v []byte) error
	GetEntry(ctx context.Context, key string) (value []byte, revision uint64, created time.Time, found bool, err error)
	Update(ctx context.Context, key string, v []byte, rev uint64) error
	Delete(ctx context.Context, key string) error
}

// ErrNameTaken is what NameStore.Create and Update return when they lose.
var ErrNameTaken = errors.New("name taken")

// nameBusyWait bounds how long a create waits for another request's create
// of the same name to land before it answers ErrBusy.
const nameBusyWait = 2 * time.Second

// ErrBusy means a name is being taken by a request in flight: retry shortly.
var ErrBusy = errors.New("busy")

// reservationGrace is how long a reservation whose holder has no commit
// yet still counts: its creator may be about to commit.
const reservationGrace = 30 * time.Second

// nameKey is the reservation key of a name, unique within its project
// ("" for the cloud's own resources: flavors, aggregates, users, projects,
// public images).
func nameKey(kind, project, name string) string {
	if project != "" {
		name = project + "/" + name
	}
	sum := sha256.Sum256([]byte(name))
	return strings.ReplaceAll(kind, " ", "_") + "." + hex.EncodeToString(sum[:16])
}

// reserveName takes name for id. A reservation held by an aggregate that
// was deleted, or that never committed (its creator died), is taken over.
func (a *App) reserveName(ctx context.Context, kind, project, name, id string) error {
	if a.Names == nil {
		return nil
	}
	key := nameKey(kind, project, name)
	var waited time.Duration
	for attempt := 0; attempt < 5; attempt++ {
		err := a.Names.Create(ctx, key, []byte(id))
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrNameTaken) {
			return err
		}
		holder, rev, created, found, err := a.Names.GetEntry(ctx, key)
		if err != nil {
			return err
		}
		if !found {
			continue
		}
		if string(holder) == id {
			return nil // a retry of the same command
		}
		exists, deleted, err := a.holderState(ctx, kind, string(holder))
		if err != nil {
			return err
		}
		if exists && !deleted {
			return domain.Conflictf("a %s named %q already exists (%s)", kind, name, holder)
		}
		if !exists && time.Since(created) < reservationGrace {
			// The holder's create is in flight (two requests for one name
			// at once): wait a little for it to land, which makes this a
			// conflict, rather than answer "busy" at once.
			if waited < nameBusyWait {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(20 * time.Millisecond):
				}
				waited += 20 * time.Millisecond
				attempt-- // a wait is not an attempt
				continue
			}
			return fmt.Errorf("a %s named %q is being created (%s): %w", kind, name, holder, ErrBusy)
		}
		if err := a.Names.Update(ctx, key, []byte(id), rev); err == nil {
			return nil
		} else if !errors.Is(err, ErrNameTaken) {
			return err
		}
	}
	return fmt.Errorf("the name %q of this %s is being taken by other requests: %w", name, kind, ErrBusy)
}

// Name kinds, as reservation keys and messages name them.
const (
	KindFlavor    = flavor.AggregateType
	KindImage     = image.AggregateType
	KindGroup     = "server group"
	KindAggregate = "host aggregate"
	// KindSegment reserves a provider network's segment (a VLAN of a
	// physical network, or a flat one) for one network.
	KindSegment = "provider segment"
)

// LookupName returns the id of the live resource of kind holding a unique
// name. It reads the reservations and the holder's own stream, never the
// read model, so a name created a moment ago is found even while the
// projections lag behind.
func (a *App) LookupName(ctx context.Context, kind, project, name string) (id string, found bool, err error) {
	if a.Names == nil {
		return "", false, errors.New("lookup name: no name store")
	}
	holder, _, _, found, err := a.Names.GetEntry(ctx, nameKey(kind, project, name))
	if err != nil || !found {
		return "", false, err
	}
	exists, deleted, err := a.holderState(ctx, kind, string(holder))
	if err != nil {
		return "", false, fmt.Errorf("lookup %s %q: %w", kind, name, err)
	}
	return string(holder), exists && !deleted, nil
}

// holderState tells whether the resource of kind with id exists and was deleted.
func (a *App) holderState(ctx context.Context, kind, id string) (exists, deleted bool, err error) {
	switch kind {
	case KindFlavor:
		st, _, err := a.Flavors.LoadLatest(ctx, id)
		return st.Exists, st.Deleted, err
	case KindImage:
		st, _, err := a.Images.LoadLatest(ctx, id)
		return st.Exists, st.Status == image.Deleted, err
	case KindGroup:
		st, _, err := a.Groups.LoadLatest(ctx, id)
		return st.Exists, st.Deleted, err
	case KindAggregate:
		st, _, err := a.Aggregates.LoadLatest(ctx, id)
		return st.Exists, st.Deleted, err
	case KindKeypair:
		st, _, err := a.Keypairs.LoadLatest(ctx, id)
		return st.Exists, st.Deleted, err
	case KindProject:
		st, _, err := a.Projects.LoadLatest(ctx, id)
		return st.Exists, st.Deleted, err
	case KindUser:
		st, _, err := a.Users.LoadLatest(ctx, id)
		return st.Exists, st.Deleted, err
	case KindSegment:
		st, _, err := a.Networks.LoadLatest(ctx, id)
		return st.Exists, st.Deleted, err
	}
	return false, false, fmt.Errorf("names of %s are not reserved", kind)
}

// releaseName frees name if id still holds it. It is best effort: the
// delete it follows has landed and must not be reported as failed, and a
// reservation left behind is taken over by the next reserveName, since its
// holder is deleted.
func (a *App) releaseName(ctx context.Context, kind, project, name, id string) {
	if a.Names == nil {
		return
	}
	key := nameKey(kind, project, name)
	holder, _, _, found, err := a.Names.GetEntry(ctx, key)
	if err == nil && found && string(holder) == id {
		_ = a.Names.Delete(ctx, key)
	}
}

// CreateFlavor reserves the flavor's name and records the flavor.
func (a *App) CreateFlavor(ctx context.Context, spec flavor.Spec, meta Meta) (Result[flavor.State], error) {
	if err := spec.Validate(); err != nil {
		return Result[flavor.State]{}, err
	}
	id := DeriveID(meta.CommandID, "flavor")
	err := a.reserveName(ctx, KindFlavor, "", spec.Name, id)
	if err != nil {
		return Result[flavor.State]{}, err
	}
	return a.Flavors.Create(ctx, id, flavor.Create{ID: flavor.ID(id), Spec: spec, At: a.Now().UTC()}, meta)
}

// DeleteFlavor deletes a flavor and frees its name.
func (a *App) DeleteFlavor(ctx context.Context, id string, meta Meta) (Result[flavor.State], error) {
	res, err := a.Flavors.Handle(ctx, id, flavor.Delete{At: a.Now().UTC()}, meta)
	if err == nil {
		a.releaseName(context.WithoutCancel(ctx), KindFlavor, "", res.State.Spec.Name, id)
	}
	return res, err
}

// CreateImage reserves the image's name and records the image.
func (a *App) CreateImage(ctx context.Context, spec image.Spec, meta Meta) (Result[image.State], error) {
	if err := spec.Validate(); err != nil {
		return Result[image.State]{}, err
	}
	id := DeriveID(meta.CommandID, "image")
	err := a.reserveName(ctx, KindImage, spec.Project, spec.Name, id)
	if err != nil {
		return Result[image.State]{}, err
	}
	return a.Images.Create(ctx, id, image.Create{ID: image.ID(id), Spec: spec, At: a.Now().UTC()}, meta)
}

// DeleteImage deletes an image and frees its name.
func (a *App) DeleteImage(ctx context.Context, id string, meta Meta) (Result[image.State], error) {
	res, err := a.Images.Handle(ctx, id, image.Delete{At: a.Now().UTC()}, meta)
	if err == nil {
		a.releaseName(context.WithoutCancel(ctx), KindImage, res.State.Spec.Project, res.State.Spec.Name, id)
	}
	return res, err
}

// CreateGroup reserves the server group's name and records the group.
func (a *App) CreateGroup(ctx context.Context, spec servergroup.Spec, meta Meta) (Result[servergroup.State], error) {
	if err := spec.Validate(); err != nil {
		return Result[servergroup.State]{}, err
	}
	id := DeriveID(meta.CommandID, "servergroup")
	err := a.reserveName(ctx, KindGroup, spec.Project, spec.Name, id)
	if err != nil {
		return Result[servergroup.State]{}, err
	}
	return a.Groups.Handle(ctx, id, servergroup.Create{ID: id, Spec: spec, At: a.Now().UTC()}, meta)
}

// DeleteGroup deletes an empty server group and frees its name.
func (a *App) DeleteGroup(ctx context.Context, id string, meta Meta) (Result[servergroup.State], error) {
	res, err := a.Groups.Handle(ctx, id, servergroup.Delete{At: a.Now().UTC()}, meta)
	if err == nil {
		a.releaseName(context.WithoutCancel(ctx), KindGroup, res.State.Spec.Project, res.State.Spec.Name, id)
	}
	return res, err
}

// CreateAggregate reserves the host aggregate's name and records it.
func (a *App) CreateAggregate(ctx context.Context, name string, md map[string]string, meta Meta) (Result[hostaggregate.State], error) {
	if err := domain.CheckName("name", name); err != nil {
		return Result[hostaggregate.State]{}, err
	}
	id := DeriveID(meta.CommandID, "hostaggregate")
	err := a.reserveName(ctx, KindAggregate, "", name, id)
	if err != nil {
		return Result[hostaggregate.State]{}, err
	}
	return a.Aggregates.Handle(ctx, id, hostaggregate.Create{ID: id, Name: name, Metadata: md, At: a.Now().UTC()}, meta)
}

// DeleteAggregate deletes a host aggregate without hosts and frees its name.
func (a *App) DeleteAggregate(ctx context.Context, id string, meta Meta) (Result[hostaggregate.State], error) {
	res, err := a.Aggregates.Handle(ctx, id, hostaggregate.Delete{At: a.Now().UTC()}, meta)
	if err == nil {
		a.releaseName(context.WithoutCancel(ctx), KindAggregate, "", res.State.Name, id)
	}
	return res, err
}
