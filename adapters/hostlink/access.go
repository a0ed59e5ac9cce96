package hostlink

import (
	"encoding/base64"
	"sync"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// Access decides who may connect to the embedded NATS and what each may
// do: keel serve's own clients everything, the fleet credentials the
// subjects of simulated hosts, and each host's credentials that host's
// subjects only. It is the server's custom authentication
// (jetstream.EmbeddedOptions.Auth). Nobody else is let in.
type Access struct {
	// Kick, when set, closes every connection made as a user (public key):
	// connections made with credentials that were replaced are closed at
	// once. See KickUser.
	Kick func(user string)

	mu    sync.RWMutex
	grant map[string]string // user public key → "" (full), Fleet, or a host id
}

// NewAccess lets nobody in yet.
func NewAccess() *Access { return &Access{grant: map[string]string{}} }

// KickUser is Access.Kick for server s: it closes the open connections
// whose user is the key (Check names them so).
func KickUser(s *server.Server) func(user string) {
	return func(user string) {
		cz, err := s.Connz(&server.ConnzOptions{User: user, Limit: 1 << 20})
		if err != nil {
			return
		}
		for _, c := range cz.Conns {
			_ = s.DisconnectClientByID(c.Cid) // gone already: nothing to close
		}
	}
}

// AdmitFull lets the user pub in with full access (keel serve's own).
func (a *Access) AdmitFull(pub string) { a.set(pub, "") }

// AdmitFleet lets the user pub in as the simulated fleet.
func (a *Access) AdmitFleet(pub string) { a.set(pub, Fleet) }

// AdmitHost lets the user pub in as host hostID, and nobody else as that
// host: earlier credentials of the host no longer connect, and their
// connections are closed.
func (a *Access) AdmitHost(hostID, pub string) { a.grantHost(hostID, pub) }

// RevokeHost lets nobody in as host hostID any more, and closes the
// connections made as it.
func (a *Access) RevokeHost(hostID string) { a.grantHost(hostID, "") }

// grantHost makes pub ("": nobody) the only user admitted as host hostID,
// and closes the connections of the users it drops.
func (a *Access) grantHost(hostID, pub string) {
	a.mu.Lock()
	var kick []string
	for k, g := range a.grant {
		if g == hostID && k != pub {
			delete(a.grant, k)
			kick = append(kick, k)
		}
	}
	if pub != "" {
		a.grant[pub] = hostID
	}
	a.mu.Unlock()
	if a.Kick != nil {
		for _, k := range kick {
			a.Kick(k)
		}
	}
}

func (a *Access) set(pub, grant string) {
	a.mu.Lock()
	a.grant[pub] = grant
	a.mu.Unlock()
}

// Check is the server's authentication of one connection: a known user
// key that signed the server's nonce, given the permissions of its grant.
func (a *Access) Check(c server.ClientAuthentication) bool {
	opts := c.GetOpts()
	if opts == nil || opts.Nkey == "" {
		return false
	}
	a.mu.RLock()
	grant, known := a.grant[opts.Nkey]
	a.mu.RUnlock()
	if !known {
		return false
	}
	sig, err := base64.RawURLEncoding.DecodeString(opts.Sig)
	if err != nil {
		if sig, err = base64.StdEncoding.DecodeString(opts.Sig); err != nil {
			return false
		}
	}
	pub, err := nkeys.FromPublicKey(opts.Nkey)
	if err != nil || pub.Verify(c.GetNonce(), sig) != nil {
		return false
	}
	user := &server.User{Username: opts.Nkey}
	switch grant {
	case "":
	case Fleet:
		user.Permissions = fleetPermissions()
	default:
		user.Permissions = hostPermissions(grant)
	}
	c.RegisterUser(user)
	return true
}

// hostPermissions limit a host's connection to its own subjects: its
// requests, the requests addressed to it (console, display, work), replies
// to those, and its own inbox. No JetStream API: see the package doc.
func hostPermissions(hostID string) *server.Permissions {
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: []string{realSpace.host + hostID + ".>"}},
		Subscribe: &server.SubjectPermission{Allow: []string{realSpace.agent + hostID + ".>", inboxPrefix(hostID) + ".>"}},
		Response:  &server.ResponsePermission{MaxMsgs: 1},
	}
}

// fleetPermissions limit a simulated fleet to the subjects of simulated
// hosts: never a real host's, never the event log, no JetStream API.
func fleetPermissions() *server.Permissions {
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: []string{simSpace.host + "*.>"}},
		Subscribe: &server.SubjectPermission{Allow: []string{simSpace.agent + "*.>", inboxPrefix("") + ".>"}},
		Response:  &server.ResponsePermission{MaxMsgs: 1},
	}
}
