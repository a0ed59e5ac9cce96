// Package jetstream is Keel's event store and blob store on NATS JetStream:
// the KEEL_EVENTS stream (one subject per aggregate, one message per commit,
// optimistic concurrency per subject), the image object store, and the
// idempotency key-value bucket. It also starts the embedded NATS server.
//
// It knows envelopes, not aggregates: deciding and folding events is the
// business of domain/ and commands/.
package jetstream

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// EmbeddedOptions configures the embedded NATS server.
type EmbeddedOptions struct {
	// StoreDir holds JetStream's files (under the Keel data dir).
	StoreDir string
	// Listen is "host:port" to accept outside clients (agents), or "" to
	// accept in-process connections only.
	Listen string
	// SyncAlways fsyncs every write, so an acknowledged event survives
	// power loss. Keel always sets it for the embedded single node.
	SyncAlways bool
	// Auth, when set, decides who connects and with which permissions
	// (package hostlink's Access); the in-process client is admitted with
	// full access through it. Without it, only the in-process client is:
	// it gets a key of its own, made at start, and a connection without a
	// known key is refused.
	Auth Authenticator
}

// Authenticator is a custom authentication of the embedded server that
// can admit the server's own client with full access.
type Authenticator interface {
	server.Authentication
	AdmitFull(publicKey string)
}

// Embedded is a running embedded NATS server and a client connected to it.
type Embedded struct {
	Server *server.Server
	Conn   *nats.Conn
}

// StartEmbedded starts a single-node NATS server with JetStream, its store
// directory readable by its owner only, admitting o.Users and its own
// in-process client.
func StartEmbedded(o EmbeddedOptions) (*Embedded, error) {
	if err := privateDir(o.StoreDir); err != nil {
		return nil, fmt.Errorf("embedded nats store: %w", err)
	}
	self, err := nkeys.CreateUser()
	if err != nil {
		return nil, fmt.Errorf("embedded nats: create the server's own nkey: %w", err)
	}
	selfKey, err := self.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("embedded nats: create the server's own nkey: %w", err)
	}
	opts := &server.Options{
		ServerName:         "keel-embedded",
		JetStream:          true,
		StoreDir:           o.StoreDir,
		JetStreamMaxMemory: 256 << 20,
		JetStreamMaxStore:  64 << 30,
		NoSigs:             true,
		SyncAlways:         o.SyncAlways,
		MaxPayload:         8 << 20,
	}
	if o.Auth != nil {
		o.Auth.AdmitFull(selfKey)
		opts.CustomClientAuthentication = o.Auth
		opts.AlwaysEnableNonce = true // the nkey signature is checked against it
	} else {
		opts.Nkeys = []*server.NkeyUser{{Nkey: selfKey}}
	}
	if o.Listen == "" {
		opts.DontListen = true
	} else {
		host, port, err := net.SplitHostPort(o.Listen)
		if err != nil {
			return nil, fmt.Errorf("nats listen address %q: %w", o.Listen, err)
		}
		opts.Host = host
		if opts.Port, err = strconv.Atoi(port); err != nil {
			return nil, fmt.Errorf("nats listen port %q: %w", port, err)
		}
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("create embedded nats: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded nats did not become ready in 30s (store %s)", o.StoreDir)
	}
	nc, err := nats.Connect("", nats.InProcessServer(s), nats.Name("keel-serve"), nats.MaxReconnects(-1),
		nats.Nkey(selfKey, self.Sign))
	if err != nil {
		s.Shutdown()
		return nil, fmt.Errorf("connect to embedded nats: %w", err)
	}
	return &Embedded{Server: s, Conn: nc}, nil
}

// ClientURL is the URL outside processes use, or "" when not listening.
func (e *Embedded) ClientURL() string {
	if e.Server.Addr() == nil {
		return ""
	}
	return e.Server.ClientURL()
}

// Close drains the client and shuts the server down.
func (e *Embedded) Close() {
	e.Conn.Close()
	e.Server.Shutdown()
	e.Server.WaitForShutdown()
}
