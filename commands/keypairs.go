package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/keypair"
	"github.com/keel-cloud/keel/domain/server"
	"github.com/keel-cloud/keel/secrets"
	"github.com/keel-cloud/keel/sshkey"
)

// KindKeypair names keypair names in reservations and messages.
const KindKeypair = keypair.AggregateType

// LoginUser is the guest's admin user, whose password Keel generates.
const LoginUser = "keel"

// Sealer seals and opens the secrets Keel generates (package secrets), so
// that only ciphertext reaches the event log.
type Sealer interface {
	Seal(plaintext []byte, id string) ([]byte, error)
	Open(sealed []byte, id string) ([]byte, error)
}

// CreateKeypair checks and normalises an OpenSSH public key, reserves the
// keypair's name and records the keypair.
func (a *App) CreateKeypair(ctx context.Context, name, publicKey string, meta Meta) (Result[keypair.State], error) {
	if err := domain.CheckName("name", name); err != nil {
		return Result[keypair.State]{}, err
	}
	key, err := sshkey.Parse(publicKey)
	if err != nil {
		return Result[keypair.State]{}, err
	}
	spec := keypair.Spec{Project: meta.Actor.Project, Name: name, Type: key.Type, PublicKey: key.Line, Fingerprint: key.Fingerprint}
	if err := spec.Validate(); err != nil {
		return Result[keypair.State]{}, err
	}
	id := DeriveID(meta.CommandID, "keypair")
	if err := a.reserveName(ctx, KindKeypair, spec.Project, name, id); err != nil {
		return Result[keypair.State]{}, err
	}
	return a.Keypairs.Create(ctx, id, keypair.Create{ID: keypair.ID(id), Spec: spec, At: a.Now().UTC()}, meta)
}

// DeleteKeypair deletes a keypair and frees its name. Servers created
// with it keep their copy of the key.
func (a *App) DeleteKeypair(ctx context.Context, id string, meta Meta) (Result[keypair.State], error) {
	res, err := a.Keypairs.Handle(ctx, id, keypair.Delete{At: a.Now().UTC()}, meta)
	if err == nil {
		a.releaseName(context.WithoutCancel(ctx), KindKeypair, res.State.Spec.Project, res.State.Spec.Name, id)
	}
	return res, err
}

// firstBoot fills in a new server's credentials: a copy of its keypair's
// public key, and a generated admin password sealed to the server's id.
func (a *App) firstBoot(ctx context.Context, c *server.Create, keypairID string) error {
	if keypairID != "" {
		kp, _, err := a.Keypairs.LoadLatest(ctx, keypairID)
		if err != nil {
			return err
		}
		if !kp.Exists || kp.Deleted || kp.Spec.Project != c.Project {
			return domain.Invalidf("keypair %s does not exist", keypairID)
		}
		c.KeyName, c.PublicKey = kp.Spec.Name, kp.Spec.PublicKey
	}
	if a.Secrets == nil {
		return nil
	}
	pw, err := secrets.Password()
	if err != nil {
		return err
	}
	c.AdminPasswordSealed, err = a.Secrets.Seal([]byte(pw), string(c.ID))
	return err
}

// LoginInfo returns the user name and the generated password of a server,
// opened from its own stream (the read model holds no password, not even
// sealed).
//
// scope, when set, is the caller's project: a server of another project
// is not found.
func (a *App) LoginInfo(ctx context.Context, id, scope string) (user, password string, err error) {
	st, _, err := a.Servers.LoadLatest(ctx, id)
	if err != nil {
		return "", "", err
	}
	if !st.Exists || st.Status == server.StatusDeleted || (scope != "" && st.Project != scope) {
		return "", "", domain.NotFoundf("server %s not found", id)
	}
	if len(st.AdminPasswordSealed) == 0 {
		// Created before Keel generated passwords, or by a control plane
		// without a secrets key: a state of this server, hence 409.
		return "", "", domain.Conflictf("server %s has no generated password (it was created before Keel generated them)", id)
	}
	if a.Secrets == nil {
		return "", "", errors.New("login info: this control plane has no secrets key")
	}
	pw, err := a.Secrets.Open(st.AdminPasswordSealed, id)
	if err != nil {
		// Another key than the one it was sealed with: an operator's
		// problem, answered as a 500 without details.
		return "", "", fmt.Errorf("open the password of server %s: %w", id, err)
	}
	return LoginUser, string(pw), nil
}
