package hostlink

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// Fleet is the host name of the fleet credentials: simulated hosts, any
// number of them, never a real host.
const Fleet = "*"

// Credentials are what an agent connects with: a NATS user nkey, the
// curve key the admin passwords of its builds are sealed to, and the host
// they belong to (Fleet for simulated fleets).
type Credentials struct {
	Host string
	NATS nkeys.KeyPair
	Seal nkeys.KeyPair
}

// NewCredentials makes fresh credentials for host.
func NewCredentials(host string) (*Credentials, error) {
	u, err := nkeys.CreateUser()
	if err != nil {
		return nil, fmt.Errorf("create credentials: %w", err)
	}
	x, err := nkeys.CreateCurveKeys()
	if err != nil {
		return nil, fmt.Errorf("create credentials: %w", err)
	}
	return &Credentials{Host: host, NATS: u, Seal: x}, nil
}

// Public returns the public keys of c: the NATS user's and the seal key's.
func (c *Credentials) Public() (user, seal string, err error) {
	if user, err = c.NATS.PublicKey(); err != nil {
		return "", "", err
	}
	seal, err = c.Seal.PublicKey()
	return user, seal, err
}

// Encode is the credentials file's text.
func (c *Credentials) Encode() ([]byte, error) {
	u, err := c.NATS.Seed()
	if err != nil {
		return nil, err
	}
	x, err := c.Seal.Seed()
	if err != nil {
		return nil, err
	}
	what := "host " + c.Host
	if c.Host == Fleet {
		what = "simulated hosts (keel agent --driver fake)"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Keel agent credentials for %s: keel agent --credentials THIS_FILE. Keep it secret.\n", what)
	fmt.Fprintf(&b, "host %s\nnats %s\nseal %s\n", c.Host, u, x)
	return b.Bytes(), nil
}

// ParseCredentials reads a credentials file's text. A file of an earlier
// Keel, holding only the NATS seed, is the fleet's, without a seal key.
func ParseCredentials(text []byte) (*Credentials, error) {
	c := &Credentials{}
	sc := bufio.NewScanner(bytes.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, ok := strings.Cut(line, " ")
		if !ok && strings.HasPrefix(line, "SU") { // an earlier Keel's agent.nk
			key, val = "nats", line
		}
		var err error
		switch key {
		case "host":
			c.Host = strings.TrimSpace(val)
		case "nats":
			c.NATS, err = nkeys.FromSeed([]byte(strings.TrimSpace(val)))
			if err == nil {
				var pub string
				if pub, err = c.NATS.PublicKey(); err == nil && !nkeys.IsValidPublicUserKey(pub) {
					err = errors.New("not a user seed")
				}
			}
		case "seal":
			c.Seal, err = nkeys.FromCurveSeed([]byte(strings.TrimSpace(val)))
		default:
			return nil, fmt.Errorf("unknown line %q", key)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
	}
	if c.NATS == nil {
		return nil, errors.New("no nats seed")
	}
	if c.Host == "" {
		c.Host = Fleet
	}
	return c, nil
}

// ReadCredentials reads the credentials file at path.
func ReadCredentials(path string) (*Credentials, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read credentials: %w", err)
	}
	c, err := ParseCredentials(text)
	if err != nil {
		return nil, fmt.Errorf("credentials %s: %w", path, err)
	}
	return c, nil
}

// WriteCredentials writes c to path, readable by its owner only,
// replacing what was there.
func WriteCredentials(path string, c *Credentials) error {
	text, err := c.Encode()
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	_, err = f.Write(text)
	if syncErr := f.Sync(); err == nil {
		err = syncErr
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write credentials: %w", err)
	}
	return nil
}

// EnsureFleetCredentials returns the fleet credentials kept at path,
// creating them when there is no such file, and completing a file of an
// earlier Keel (a NATS seed alone) with a seal key, keeping its seed so
// that copies of it still connect.
func EnsureFleetCredentials(path string) (*Credentials, error) {
	c, err := ReadCredentials(path)
	if errors.Is(err, os.ErrNotExist) {
		if c, err = NewCredentials(Fleet); err != nil {
			return nil, err
		}
		return c, WriteCredentials(path, c)
	}
	if err != nil {
		return nil, err
	}
	if c.Host != Fleet {
		return nil, fmt.Errorf("credentials %s are host %s's, not the simulated fleet's", path, c.Host)
	}
	if c.Seal == nil {
		if c.Seal, err = nkeys.CreateCurveKeys(); err != nil {
			return nil, err
		}
		return c, WriteCredentials(path, c)
	}
	return c, os.Chmod(path, 0o600)
}

// Option is the NATS connect option that authenticates with c.
func (c *Credentials) Option() (nats.Option, error) {
	pub, err := c.NATS.PublicKey()
	if err != nil {
		return nil, err
	}
	return nats.Nkey(pub, c.NATS.Sign), nil
}
