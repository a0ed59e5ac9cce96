package node

import (
	"fmt"
	"path/filepath"

	"github.com/nats-io/nats.go"

	keeljs "github.com/keel-cloud/keel/adapters/jetstream"
)

// startEmbedded starts the embedded NATS on DataDir/jetstream. It admits the
// agents' user, whose seed is kept in DataDir/agent.nk (created on first
// start), and its own in-process client; nobody else.
func (n *Node) startEmbedded() error {
	c := n.Config
	agents, err := keeljs.EnsureUserSeed(filepath.Join(c.DataDir, agentCredentialsFile))
	if err != nil {
		return err
	}
	e, err := keeljs.StartEmbedded(keeljs.EmbeddedOptions{StoreDir: filepath.Join(c.DataDir, "jetstream"),
		Listen: c.NATSListen, SyncAlways: true, Users: []string{agents}})
	if err != nil {
		return err
	}
	n.Embedded, n.nc = e, e.Conn
	return nil
}

// connectNATS connects to the external NATS at NATSURL, with the nkey seed in
// NATSCreds when given.
func (n *Node) connectNATS() error {
	c := n.Config
	opts := []nats.Option{nats.Name("keel-serve"), nats.MaxReconnects(-1)}
	if c.NATSCreds != "" {
		creds, err := keeljs.CredentialsOption(c.NATSCreds)
		if err != nil {
			return err
		}
		opts = append(opts, creds)
	}
	nc, err := nats.Connect(c.NATSURL, opts...)
	if err != nil {
		return fmt.Errorf("connect to nats %s: %w", c.NATSURL, err)
	}
	n.nc = nc
	return nil
}
