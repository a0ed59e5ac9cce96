package jetstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
)

// batchSize bounds the commits one batch direct get returns; the server
// also stops at its max pending bytes and says how many are left.
const batchSize = 512

// errNoBatch means the server did not answer a batch direct get (a server
// before 2.11): the caller reads one commit at a time instead.
var errNoBatch = errors.New("batch direct get not supported")

// loadBatch reads the commits of subj with sequences from..upTo with batch
// direct gets (nats-server 2.11+): one request per batchSize commits
// instead of one per commit. nats.go v1.55.0 has no call for it, so it
// speaks the JetStream API ($JS.API.DIRECT.GET.<stream>) itself.
func (s *Store) loadBatch(ctx context.Context, subj string, from, upTo uint64) ([]stored, error) {
	nc := s.JS.Conn()
	var out []stored
	for from <= upTo {
		msgs, next, err := directBatch(ctx, nc, StreamName, subj, from, upTo)
		if err != nil {
			return nil, err
		}
		out = append(out, msgs...)
		if next == 0 {
			return out, nil
		}
		from = next
	}
	return out, nil
}

// stored is one message read back: its stream sequence and data.
type stored struct {
	seq  uint64
	data []byte
}

// directBatch makes one batch request; next is the sequence to continue
// from when the server stopped early, 0 when the range is done.
func directBatch(ctx context.Context, nc *nats.Conn, stream, subj string, from, upTo uint64) (msgs []stored, next uint64, err error) {
	req, _ := json.Marshal(struct {
		Seq     uint64 `json:"seq"`
		NextFor string `json:"next_by_subj"`
		Batch   int    `json:"batch"`
		UpToSeq uint64 `json:"up_to_seq"`
	}{from, subj, int(min(batchSize, upTo-from+1)), upTo})
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second) // a lost answer must not hang a load
	defer cancel()
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, 0, fmt.Errorf("batch get %s: %w", subj, err)
	}
	defer sub.Unsubscribe()
	if err := nc.PublishRequest("$JS.API.DIRECT.GET."+stream, inbox, req); err != nil {
		return nil, 0, fmt.Errorf("batch get %s: %w", subj, err)
	}
	var last uint64
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return nil, 0, fmt.Errorf("batch get %s from %d: %w", subj, from, err)
		}
		switch status := m.Header.Get("Status"); status {
		case "":
		case "204": // end of batch
			pending, _ := strconv.ParseUint(m.Header.Get("Nats-Num-Pending"), 10, 64)
			if pending == 0 || last == 0 || last >= upTo {
				return msgs, 0, nil
			}
			return msgs, last + 1, nil
		case "404":
			return msgs, 0, nil
		case "503": // no responders: direct gets not served
			return nil, 0, errNoBatch
		default:
			return nil, 0, fmt.Errorf("batch get %s from %d: status %s %s", subj, from, status, m.Header.Get("Description"))
		}
		seq, err := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
		if err != nil || m.Header.Get("Nats-Num-Pending") == "" {
			return nil, 0, errNoBatch // a single-message answer: the server ignored "batch"
		}
		if seq > upTo {
			continue // committed after the range was fixed: not asked for
		}
		last = seq
		msgs = append(msgs, stored{seq: seq, data: m.Data})
	}
}
