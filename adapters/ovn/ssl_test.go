package ovn_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keel-cloud/keel/adapters/ovn"
	"github.com/keel-cloud/keel/adapters/ovn/ovntest"
)

// pki writes PEM files under dir: a CA, and a key and certificate signed
// by it for each name. It returns the path of a file by its name.
type pki struct {
	dir    string
	caKey  *ecdsa.PrivateKey
	caCert *x509.Certificate
}

func newPKI(t *testing.T, dir, name string) *pki {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	p := &pki{dir: dir, caKey: key, caCert: cert}
	p.write(t, name+"-cacert.pem", "CERTIFICATE", der)
	return p
}

func (p *pki) write(t *testing.T, file, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, file)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// issue makes name-privkey.pem and name-cert.pem, signed by the CA.
func (p *pki) issue(t *testing.T, name string, serial int64) (keyFile, certFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return p.write(t, name+"-privkey.pem", "EC PRIVATE KEY", kder), p.write(t, name+"-cert.pem", "CERTIFICATE", der)
}

// The adapter reaches an NB served over SSL with the files ovn-nbctl
// takes (mutual TLS), and refuses a server whose certificate another CA
// signed.
func TestDialOverSSL(t *testing.T) {
	dir := t.TempDir()
	ca := newPKI(t, dir, "ovn")
	srvKey, srvCert := ca.issue(t, "nb", 2)
	cliKey, cliCert := ca.issue(t, "keel", 3)
	caFile := filepath.Join(dir, "ovn-cacert.pem")
	srv := ovntest.Start(t, ovntest.WithSSL(ovntest.SSLFiles{PrivateKey: srvKey, Certificate: srvCert, CACert: caFile}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	conf, err := ovn.TLSFiles(cliKey, cliCert, caFile)
	must(t, err)
	c, err := ovn.Dial(ctx, srv.NBSSL, ovn.Options{TLS: conf})
	must(t, err)
	defer c.Close()
	must(t, c.EnsureNetwork(ctx, net(netA, "p1"), nil))
	contains(t, "switch over ssl", strings.TrimSpace(srv.NBCtl(t, "ls-list")), "keel-"+netA)

	// A client that trusts another CA refuses this server.
	other := newPKI(t, t.TempDir(), "other")
	bad, err := ovn.TLSFiles(cliKey, cliCert, filepath.Join(other.dir, "other-cacert.pem"))
	must(t, err)
	short, cancel2 := context.WithTimeout(ctx, 3*time.Second)
	defer cancel2()
	if c2, err := ovn.Dial(short, srv.NBSSL, ovn.Options{TLS: bad, ConnectTimeout: 3 * time.Second}); err == nil {
		c2.Close()
		t.Fatal("dialled a server whose certificate another CA signed")
	}
	if _, err := ovn.TLSFiles(cliKey, cliCert, ""); err == nil {
		t.Error("TLSFiles without a CA certificate: no error")
	}
}
