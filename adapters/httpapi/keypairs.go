package httpapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/keel-cloud/keel/adapters/postgres"
	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/commands"
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/keypair"
)

// KeypairOutput is one keypair.
type KeypairOutput struct {
	Written
	Location string `header:"Location"`
	Body     api.Keypair
}

// LoginInfoOutput is a server's login info; it is never cached.
type LoginInfoOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         api.LoginInfo
}

func (a *API) registerKeypairs(hapi huma.API) {
	huma.Register(hapi, huma.Operation{OperationID: "create-keypair", Method: http.MethodPost, Path: "/v1/keypairs",
		Summary: "Create a keypair", Tags: []string{"keypairs"}, DefaultStatus: http.StatusCreated,
		Description: "Records a public key the user brings (Keel never generates or holds a private key), in the caller's project. Names are unique within a project. " +
			"Accepted: ssh-ed25519, ecdsa-sha2-nistp256/384/521, ssh-rsa of at least 2048 bits; one key, no options, at most 16 KiB."},
		a.createKeypair)
	huma.Register(hapi, huma.Operation{OperationID: "list-keypairs", Method: http.MethodGet, Path: "/v1/keypairs",
		Summary: "List keypairs", Description: "Keypairs, a page at a time; filter by exact name.", Tags: []string{"keypairs"}},
		a.listKeypairs)
	huma.Register(hapi, huma.Operation{OperationID: "get-keypair", Method: http.MethodGet, Path: "/v1/keypairs/{id}",
		Summary: "Show a keypair", Description: "One keypair by id or unique name.", Tags: []string{"keypairs"}},
		a.getKeypair)
	huma.Register(hapi, huma.Operation{OperationID: "delete-keypair", Method: http.MethodDelete, Path: "/v1/keypairs/{id}",
		Summary: "Delete a keypair", Description: "Servers keep a copy of the key they were created with, so deleting it changes no server.",
		Tags: []string{"keypairs"}, DefaultStatus: http.StatusNoContent},
		a.deleteKeypair)
}

func (a *API) createKeypair(ctx context.Context, in *struct{ Body api.KeypairBody }) (*KeypairOutput, error) {
	if err := domain.CheckName("name", in.Body.Name); err != nil {
		return nil, a.fail(ctx, err)
	}
	res, err := a.App.CreateKeypair(ctx, in.Body.Name, in.Body.PublicKey, a.meta(ctx, commandID(ctx)))
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	id := string(res.State.ID)
	return &KeypairOutput{Written: Written{res.Seq}, Location: "/v1/keypairs/" + id, Body: keypairView(res.State)}, nil
}

func (a *API) listKeypairs(ctx context.Context, in *struct {
	ReadAfter
	PageParams
	AllProjects
	Name string `query:"name" maxLength:"255" doc:"Only the keypair with this name"`
}) (*ListOutput[api.Keypair], error) {
	if err := a.waitRead(ctx, in.ReadAfter); err != nil {
		return nil, err
	}
	scope, err := a.listScope(ctx, in.AllProjects)
	if err != nil {
		return nil, err
	}
	items, next, err := a.Read.Keypairs(ctx, postgres.KeypairFilter{Scope: scope, Name: in.Name}, in.page())
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return pageOut(items, next, keypairOut), nil
}

func (a *API) getKeypair(ctx context.Context, in *struct {
	ReadAfter
	IDParam
}) (*KeypairOutput, error) {
	if err := a.waitRead(ctx, in.ReadAfter); err != nil {
		return nil, err
	}
	id, err := a.keypairID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	k, err := a.Read.Keypair(ctx, id)
	if err != nil {
		return nil, a.notFoundOr(ctx, err, "keypair", in.ID)
	}
	if !visible(ctx, k.ProjectID, false) {
		return nil, notFound(ctx, "keypair", in.ID)
	}
	return &KeypairOutput{Body: keypairOut(k)}, nil
}

func (a *API) deleteKeypair(ctx context.Context, in *IDParam) (*DeletedOutput, error) {
	id, err := a.keypairID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	res, err := a.App.DeleteKeypair(ctx, id, a.meta(ctx, commandID(ctx)))
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &DeletedOutput{Written{res.Seq}}, nil
}

// loginInfo opens a server's generated password. It reads the server's
// own stream, not the read model, which holds no password; a server name
// resolves in the read model, after Keel-Min-Sequence.
func (a *API) loginInfo(ctx context.Context, in *struct {
	ReadAfter
	IDParam
}) (*LoginInfoOutput, error) {
	if err := a.waitRead(ctx, in.ReadAfter); err != nil {
		return nil, err
	}
	id, err := a.serverID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	user, pw, err := a.App.LoginInfo(ctx, id, a.meta(ctx, "").Scope)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return &LoginInfoOutput{CacheControl: "no-store", Body: api.LoginInfo{Username: user, Password: pw}}, nil
}

func (a *API) keypairID(ctx context.Context, ref string) (string, error) {
	return a.resolveUnique(ctx, commands.KindKeypair, ref)
}

func keypairView(st keypair.State) api.Keypair {
	s := st.Spec
	return api.Keypair{ID: string(st.ID), Name: s.Name, Type: s.Type, PublicKey: s.PublicKey, Fingerprint: s.Fingerprint, CreatedAt: st.CreatedAt, ProjectID: &s.Project}
}
