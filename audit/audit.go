// Package audit is Keel's audit trail in its pure form: the record the API
// writes for every command and every refused authentication, the hash that
// chains records in the order of the audit stream, and the verifier that
// walks a chain and names the first record that was changed, removed or
// reordered.
//
// It imports only the standard library: capturing records (adapters/httpapi),
// publishing them (adapters/jetstream) and keeping the chain in Postgres
// (adapters/postgres) are the adapters' business.
package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// Outcomes of a record (CADF's).
const (
	Success = "success"
	Failure = "failure"
)

// Record is one audited request, as published on the audit stream. Its
// JSON encoding, byte for byte as published, is what the chain hashes.
type Record struct {
	// The fields audit_records keeps in columns come first, in this
	// order: the verifier checks the columns against the record's start.
	ID        string    `json:"id"`
	At        time.Time `json:"at"`
	Project   string    `json:"project_id,omitempty"`
	Operation string    `json:"operation,omitempty"`
	Outcome   string    `json:"outcome"`

	Actor     Actor  `json:"actor"`
	Source    string `json:"source"`
	RequestID string `json:"request_id"`
	Method    string `json:"method"`
	Path      string `json:"path"`
	Target    Target `json:"target"`
	Status    int    `json:"status"`
	Reason    string `json:"reason,omitempty"`
}

// Actor is who made the request: the token's user, or for a password
// login the name it gave (no id: a refused login names no known user).
type Actor struct {
	UserID   string `json:"user_id,omitempty"`
	UserName string `json:"user_name,omitempty"`
	TokenID  string `json:"token_id,omitempty"`
}

// Target is the resource a request acted on: its type (servers, tokens,
// ...) and id ("" when the request names none, as a failed create).
type Target struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`
}

// HashSize is the size of a chain hash.
const HashSize = sha256.Size

// Hash is the chain hash of the record at stream sequence seq whose
// predecessor's hash is prev (empty for the first record):
// SHA-256(prev || record || seq as 8 bytes big-endian).
func Hash(prev, record []byte, seq uint64) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(record)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	h.Write(b[:])
	return h.Sum(nil)
}

// Stored is a record as the audit stream holds it: its sequence there and
// its bytes as published.
type Stored struct {
	Seq  uint64
	Data []byte
}
