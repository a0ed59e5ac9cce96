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
	// Disconnect, when set, closes a client connection by id (the
	// server's DisconnectClientByID): connections made with credentials
	// that were replaced are closed at once.
	Disconnect func(id uint64) error

	mu      sync.RWMutex
	grant   map[string]string   // user public key → "" (full), Fleet, or a host id
	clients map[string][]uint64 // user public key → ids of the connections it made
}

// NewAccess lets nobody in yet.
func NewAccess() *Access { return &Access{grant: map[string]string{}, clients: map[string][]uint64{}} }

// AdmitFull lets the user pub in with full access (keel serve's own).
func (a *Access) AdmitFull(pub string) { a.set(pub, "") }

// AdmitFleet lets the user pub in as the simulated fleet.
func (a *Access) AdmitFleet(pub string) { a.set(pub, Fleet) }

// AdmitHost lets the user pub in as host hostID, and nobody else as that
// host: earlier credentials of the host no longer connect, and their
// connections are closed.
func (a *Access) AdmitHost(hostID, pub string) {
	a.mu.Lock()
	var kick []uint64
	for k, g := range a.grant {
		if g == hostID && k != pub {
			delete(a.grant, k)
			kick = append(kick, a.clients[k]...)
			delete(a.clients, k)
		}
	}
	a.grant[pub] = hostID
	a.mu.Unlock()
	if a.Disconnect != nil {
		for _, id := range kick {
			_ = a.Disconnect(id) // gone already: nothing to close
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
	if grant != "" {
		a.mu.Lock()
		ids := a.clients[opts.Nkey]
		if len(ids) >= 64 {
			ids = ids[1:] // long-gone connections of a host that reconnects often
		}
		a.clients[opts.Nkey] = append(ids, c.GetID())
		a.mu.Unlock()
	}
	return true
}

// hostPermissions limit a host's connection to its own subjects: its
// requests, its work queue (read and acknowledge, never create or delete),
// console requests addressed to it, replies to those, and its own inbox.
func hostPermissions(hostID string) *server.Permissions {
	cons := WorkStream + "." + HostConsumer(hostID)
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{
			realSpace.host + hostID + ".>",
			"$JS.API.CONSUMER.INFO." + cons,
			"$JS.API.CONSUMER.MSG.NEXT." + cons,
			"$JS.ACK." + cons + ".>",
		}},
		Subscribe: &server.SubjectPermission{Allow: []string{
			realSpace.agent + hostID + ".>",
			inboxPrefix(hostID) + ".>",
		}},
		Response: &server.ResponsePermission{MaxMsgs: 1},
	}
}

// fleetPermissions limit a simulated fleet to the subjects of simulated
// hosts: never a real host's, never the event log.
func fleetPermissions() *server.Permissions {
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{
			simSpace.host + "*.>",
			"$JS.API.CONSUMER.INFO." + SimWorkStream + ".>",
			"$JS.API.CONSUMER.CREATE." + SimWorkStream + ".>",
			"$JS.API.CONSUMER.DURABLE.CREATE." + SimWorkStream + ".>",
			"$JS.API.CONSUMER.MSG.NEXT." + SimWorkStream + ".>",
			"$JS.ACK." + SimWorkStream + ".>",
		}},
		Subscribe: &server.SubjectPermission{Allow: []string{
			simSpace.agent + "*.>",
			inboxPrefix("") + ".>",
		}},
		Response: &server.ResponsePermission{MaxMsgs: 1},
	}
}
