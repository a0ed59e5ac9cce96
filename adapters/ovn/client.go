// Package ovn is the OVN Northbound adapter: it writes the desired state of
// Keel's networks, subnets, ports, security groups, routers and floating
// IPs (their domain State values) into the NB database, idempotently, and
// repairs drift (Reconcile).
//
// The translation from domain state to NB rows (translate.go, acl.go) is
// pure; each Ensure/Delete reads libovsdb's cache of the monitored tables,
// compares, and writes the difference in one transaction, whose results
// are always checked with ovsdb.CheckOperationResults. A call that finds
// the rows as they should be writes nothing. Keel's rows carry its ids in
// external_ids (keel:network, keel:port, ...); rows without them are never
// changed or deleted. See docs/architecture.md, "The OVN adapter".
//
// It must not decide anything: what exists is the domain's; it must not
// import the event log, and it never touches the Southbound database.
package ovn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/go-logr/logr"
	"github.com/ovn-org/libovsdb/client"
	"github.com/ovn-org/libovsdb/model"
	"github.com/ovn-org/libovsdb/ovsdb"

	"github.com/keel-cloud/keel/adapters/ovn/nbdb"
)

// Options configure Dial.
type Options struct {
	// Logger receives libovsdb's messages; at Info and above only, so its
	// per-operation debug lines stay out. Nil uses slog.Default().
	Logger *slog.Logger
	// ConnectTimeout bounds the first connection (default 10 s).
	ConnectTimeout time.Duration
	// ReconnectTimeout bounds each reconnection attempt (default 10 s);
	// attempts back off exponentially without end.
	ReconnectTimeout time.Duration
	// TLS is the client's configuration for ssl: endpoints (TLSFiles
	// builds it from the files ovn-nbctl takes); nil for unix: and tcp:.
	TLS *tls.Config
}

// TLSFiles is the TLS configuration of a client that presents the
// certificate and private key in certFile and keyFile and trusts only the
// CA certificate(s) in caFile, as ovn-nbctl's --certificate,
// --private-key and --ca-cert do. The server's certificate is checked
// against that CA; its name is not (OVN's PKI names switches and
// controllers, not addresses), as with ovn-nbctl.
func TLSFiles(keyFile, certFile, caFile string) (*tls.Config, error) {
	if keyFile == "" || certFile == "" || caFile == "" {
		return nil, errors.New("ovn: ssl needs a private key, a certificate and a CA certificate")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("ovn: client certificate: %w", err)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("ovn: CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ovn: no certificate in %s", caFile)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		// Checked below against pool, without the host name.
		InsecureSkipVerify: true, //nolint:gosec // the chain is verified in VerifyPeerCertificate
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			return verifyChain(raw, pool)
		},
	}, nil
}

// verifyChain checks the server's chain against roots, without a name.
func verifyChain(raw [][]byte, roots *x509.CertPool) error {
	if len(raw) == 0 {
		return errors.New("ovn: the server sent no certificate")
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, b := range raw {
		c, err := x509.ParseCertificate(b)
		if err != nil {
			return fmt.Errorf("ovn: server certificate: %w", err)
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
	return err
}

// Client is a connection to an NB database that monitors the tables Keel
// writes.
type Client struct {
	nb  client.Client
	txn atomic.Int64
}

// monitored are the tables the adapter reads and writes; it monitors no
// others.
func monitored() []client.MonitorOption {
	return []client.MonitorOption{
		client.WithTable(&nbdb.LogicalSwitch{}),
		client.WithTable(&nbdb.LogicalSwitchPort{}),
		client.WithTable(&nbdb.DHCPOptions{}),
		client.WithTable(&nbdb.PortGroup{}),
		client.WithTable(&nbdb.ACL{}),
		client.WithTable(&nbdb.LogicalRouter{}),
		client.WithTable(&nbdb.LogicalRouterPort{}),
		client.WithTable(&nbdb.GatewayChassis{}),
		client.WithTable(&nbdb.NAT{}),
	}
}

// Dial connects to the NB database at endpoint ("unix:/path",
// "tcp:host:port" or "ssl:host:port"; more than one, comma-separated, for
// a cluster) and starts monitoring. Lost connections are re-established
// with exponential backoff and the monitor resumed.
func Dial(ctx context.Context, endpoint string, o Options) (*Client, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.ReconnectTimeout == 0 {
		o.ReconnectTimeout = 10 * time.Second
	}
	dbModel, err := nbdb.FullDatabaseModel()
	if err != nil {
		return nil, err
	}
	logger := quietLogger(o.Logger)
	bo := backoff.NewExponentialBackOff()
	bo.MaxElapsedTime = 0 // retry forever
	opts := []client.Option{client.WithLogger(&logger), client.WithReconnect(o.ReconnectTimeout, bo)}
	for _, ep := range strings.Split(endpoint, ",") {
		opts = append(opts, client.WithEndpoint(strings.TrimSpace(ep)))
	}
	if o.TLS != nil {
		opts = append(opts, client.WithTLSConfig(o.TLS))
	}
	nb, err := client.NewOVSDBClient(dbModel, opts...)
	if err != nil {
		return nil, fmt.Errorf("ovn: nb client for %s: %w", endpoint, err)
	}
	cctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout)
	defer cancel()
	if err := nb.Connect(cctx); err != nil {
		return nil, fmt.Errorf("ovn: connect to %s: %w", endpoint, err)
	}
	if _, err := nb.Monitor(cctx, nb.NewMonitor(monitored()...)); err != nil {
		nb.Close()
		return nil, fmt.Errorf("ovn: monitor %s: %w", endpoint, err)
	}
	return &Client{nb: nb}, nil
}

// quietLogger is a logr logger over l that drops libovsdb's verbose
// levels (V(1) and up become slog levels below Info).
func quietLogger(l *slog.Logger) logr.Logger {
	return logr.FromSlogHandler(l.With("component", "ovn-nb").Handler())
}

// Connected reports whether the client is connected now, with its
// monitors (and so its cache) restored after a reconnection. libovsdb's
// own Connected stays true while it reconnects; its current endpoint is
// empty then, and set again only once the monitors run.
func (c *Client) Connected() bool { return c.nb.Connected() && c.nb.CurrentEndpoint() != "" }

// Close disconnects for good.
func (c *Client) Close() { c.nb.Close() }

// Transactions counts the transactions the client has sent, for tests and
// metrics: an Ensure that finds everything in place sends none.
func (c *Client) Transactions() int64 { return c.txn.Load() }

// transact sends ops as one transaction, if there are any, and checks
// every operation's result.
func (c *Client) transact(ctx context.Context, what string, ops []ovsdb.Operation) error {
	if len(ops) == 0 {
		return nil
	}
	c.txn.Add(1)
	results, err := c.nb.Transact(ctx, ops...)
	if err != nil {
		return fmt.Errorf("ovn: %s: %w", what, err)
	}
	if _, err := ovsdb.CheckOperationResults(results, ops); err != nil {
		return fmt.Errorf("ovn: %s: %w", what, err)
	}
	return nil
}

// list returns the cached rows of T that keep says to keep. The rows are
// shallow copies: their slices and maps are the cache's own, which
// libovsdb never changes in place (it replaces a row on update), so they
// must be read, never written. keep sees every row of the table without
// a copy: libovsdb's WhereCache clones each row before its predicate sees
// it (a JSON round trip), which made a Reconcile quadratic in the size of
// keel_drop's port set (BenchmarkReconcile).
func list[T any](c *Client, keep func(*T) bool) ([]T, error) {
	cache := c.nb.Cache()
	if cache == nil {
		return nil, fmt.Errorf("ovn: %w", client.ErrNotConnected)
	}
	name := cache.DatabaseModel().FindTable(reflect.TypeFor[*T]())
	table := cache.Table(name)
	if table == nil {
		return nil, fmt.Errorf("ovn: table of %s not monitored", reflect.TypeFor[T]())
	}
	var rows []T
	for _, m := range table.RowsShallow() {
		if row, ok := m.(*T); ok && keep(row) {
			rows = append(rows, *row)
		}
	}
	return rows, nil
}

// one returns the cached row of T that keep keeps, or nil. More than one
// is an error: Keel never makes two.
func one[T any](c *Client, what string, keep func(*T) bool) (*T, error) {
	rows, err := list(c, keep)
	switch {
	case err != nil:
		return nil, err
	case len(rows) > 1:
		return nil, fmt.Errorf("ovn: %d rows for %s", len(rows), what)
	case len(rows) == 0:
		return nil, nil
	}
	return &rows[0], nil
}

// byID keeps rows whose external_ids[key] is id.
func byID(ids map[string]string, key, id string) bool { return ids[key] == id && id != "" }

// ops concatenates operation lists, keeping the first error.
type opList struct {
	ops []ovsdb.Operation
	err error
}

func (l *opList) add(ops []ovsdb.Operation, err error) {
	if l.err != nil {
		return
	}
	if err != nil {
		l.err = err
		return
	}
	l.ops = append(l.ops, ops...)
}

// fail records err unless one is already there.
func (l *opList) fail(err error) {
	if l.err == nil {
		l.err = err
	}
}

// errNotFound says a row another one needs is not in the NB yet.
var errNotFound = errors.New("not in the northbound database")

// mutate is the mutation of the row of m's table whose UUID is *uuid.
// Where(m) would look that row up in the cache and copy it whole (a JSON
// round trip: about 400 KB for keel_drop with 10,000 members) only to
// learn its UUID, which the caller already has.
func (c *Client) mutate(m model.Model, uuid *string, mutations ...model.Mutation) ([]ovsdb.Operation, error) {
	return c.nb.WhereAll(m, model.Condition{Field: uuid, Function: ovsdb.ConditionEqual, Value: *uuid}).Mutate(m, mutations...)
}

// mutateInsert and mutateDelete add or remove UUIDs in a set column.
func mutateInsert(field any, uuids ...string) model.Mutation {
	return model.Mutation{Field: field, Mutator: ovsdb.MutateOperationInsert, Value: uuids}
}

func mutateDelete(field any, uuids ...string) model.Mutation {
	return model.Mutation{Field: field, Mutator: ovsdb.MutateOperationDelete, Value: uuids}
}
