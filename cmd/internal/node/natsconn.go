package node

import (
	"fmt"
	"path/filepath"

	"github.com/nats-io/nats.go"

	"github.com/keel-cloud/keel/adapters/hostlink"
	keeljs "github.com/keel-cloud/keel/adapters/jetstream"
)

// startEmbedded starts the embedded NATS on DataDir/jetstream. It admits its
// own in-process client, simulated fleets with the credentials kept in
// DataDir/agent.nk (created on first start), and each host with the
// credentials issued to it (keel host credentials), limited to that host's
// subjects (hostlink.Access); nobody else.
func (n *Node) startEmbedded() error {
	c := n.Config
	n.access = hostlink.NewAccess()
	e, err := keeljs.StartEmbedded(keeljs.EmbeddedOptions{StoreDir: filepath.Join(c.DataDir, "jetstream"),
		Listen: c.NATSListen, SyncAlways: true, Auth: n.access})
	if err != nil {
		return err
	}
	n.access.Kick = hostlink.KickUser(e.Server)
	n.Embedded, n.nc = e, e.Conn
	return nil
}

// connectNATS connects to the external NATS at NATSURL, with the nkey seed in
// NATSCreds when given.
func (n *Node) connectNATS() error {
	nc, err := n.dialExternal("keel-serve")
	if err != nil {
		return err
	}
	n.nc = nc
	return nil
}

// dialExternal makes a connection to the external NATS.
func (n *Node) dialExternal(name string) (*nats.Conn, error) {
	c := n.Config
	opts := []nats.Option{nats.Name(name), nats.MaxReconnects(-1)}
	if c.NATSCreds != "" {
		creds, err := keeljs.CredentialsOption(c.NATSCreds)
		if err != nil {
			return nil, err
		}
		opts = append(opts, creds)
	}
	nc, err := nats.Connect(c.NATSURL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", c.NATSURL, err)
	}
	return nc, nil
}
