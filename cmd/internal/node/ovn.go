package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"time"

	keeljs "github.com/keel-cloud/keel/adapters/jetstream"
	"github.com/keel-cloud/keel/adapters/ovn"
	"github.com/keel-cloud/keel/adapters/ovn/nbsync"
)

// OVNConfig configures the network adapter. With no NB endpoint none runs.
// Host agents never get these settings: only keel serve reaches the NB.
type OVNConfig struct {
	// NB is the Northbound database: unix:/path, tcp:host:port or
	// ssl:host:port (comma-separated for a clustered NB).
	NB string
	// PrivateKey, Certificate and CACert are the client's TLS files for
	// ssl: endpoints (as ovn-nbctl's --private-key, --certificate, --ca-cert).
	PrivateKey, Certificate, CACert string
	// Reconcile is the period of the full reconcile (default 1 minute).
	Reconcile time.Duration
	// GatewayChassis hosts routers' gateway ports ("": none, so no NAT).
	GatewayChassis string
	// LeaseTTL is the TTL of a new KEEL_LEASES bucket (default 15 s): how
	// long a dead active adapter keeps the others out.
	LeaseTTL time.Duration
}

// startOVN starts the network adapter when an NB endpoint is configured:
// bad TLS files fail the start; an NB that cannot be reached yet does not
// (the adapter dials until it can, and meanwhile does not campaign for the
// lease, so a replica that reaches the NB writes it).
func (n *Node) startOVN(ctx, runCtx context.Context) error {
	o := n.Config.OVN
	if o.NB == "" {
		return nil
	}
	opts := ovn.Options{Logger: n.Config.Log}
	if strings.Contains(o.NB, "ssl:") {
		tlsConf, err := ovn.TLSFiles(o.PrivateKey, o.Certificate, o.CACert)
		if err != nil {
			return fmt.Errorf("--ovn-nb %s: %w", o.NB, err)
		}
		opts.TLS = tlsConf
	}
	leases, err := keeljs.OpenLeases(ctx, n.Store.JS, cmpOr(o.LeaseTTL, keeljs.DefaultLeaseTTL), n.Store.Replicas)
	if err != nil {
		return err
	}
	metrics := nbsync.NewMetrics()
	for _, c := range metrics.Collectors() {
		if err := n.Metrics.Register(c); err != nil {
			return err
		}
	}
	s := &nbsync.Syncer{Log: n.Store, Subs: n.parking(), Leases: leases, Holder: holderName(),
		Interval: o.Reconcile, Router: ovn.RouterOptions{GatewayChassis: o.GatewayChassis}, Logger: n.Config.Log, Metrics: metrics}
	n.goRun(func() error {
		nb := dialNB(runCtx, o.NB, opts, n.Config.Log)
		if nb == nil {
			return nil // stopping
		}
		defer nb.Close()
		s.NB = nb
		s.Run(runCtx)
		return nil
	})
	return nil
}

// dialNB connects to the NB, trying again (up to every 30 s) until it
// can or ctx ends (nil).
func dialNB(ctx context.Context, endpoint string, o ovn.Options, log interface{ Warn(string, ...any) }) *ovn.Client {
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		nb, err := ovn.Dial(ctx, endpoint, o)
		if err == nil {
			return nb
		}
		if ctx.Err() != nil {
			return nil
		}
		log.Warn("network adapter: cannot reach the OVN Northbound database; trying again", "nb", endpoint, "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// holderName names this process in the lease: host, pid and a random
// suffix (two processes on one host, or a pid reused, stay apart).
func holderName() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
