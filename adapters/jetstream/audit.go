package jetstream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keel-cloud/keel/audit"
)

// AuditStream holds the audit records, one message each, in the order the
// chain hashes them. Like KEEL_EVENTS it keeps everything and denies
// deletes and purges: it is the record the Postgres chain is checked against.
const AuditStream = "KEEL_AUDIT"

// AuditSubject is the one subject of AuditStream.
const AuditSubject = "keel.audit.records"

// AuditLog publishes and reads audit records on AuditStream.
type AuditLog struct {
	js     jetstream.JetStream
	stream jetstream.Stream
}

// OpenAudit connects to the audit stream, creating or updating it with the
// event stream's storage and replicas.
func OpenAudit(ctx context.Context, js jetstream.JetStream, replicas int) (*AuditLog, error) {
	s, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        AuditStream,
		Description: "Keel audit trail: every command and every refused authentication, in chain order",
		Subjects:    []string{AuditSubject},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxMsgs:     -1, MaxBytes: -1, MaxAge: 0, MaxMsgsPerSubject: -1,
		Discard:     jetstream.DiscardOld,
		DenyDelete:  true,
		DenyPurge:   true,
		AllowDirect: true,
		Duplicates:  DefaultDuplicateWindow,
		Replicas:    max(replicas, 1),
		MaxMsgSize:  64 << 10,
	})
	if err != nil {
		return nil, fmt.Errorf("create stream %s: %w", AuditStream, err)
	}
	return &AuditLog{js: js, stream: s}, nil
}

// Publish appends one record and waits for the stream's acknowledgement.
// The record id is the message id, so a retried publish lands once.
func (l *AuditLog) Publish(ctx context.Context, id string, data []byte) (uint64, error) {
	var lastErr error
	for attempt := 0; attempt < 4; attempt++ {
		if attempt > 0 {
			if err := sleep(ctx, time.Duration(attempt*attempt)*20*time.Millisecond); err != nil {
				return 0, fmt.Errorf("publish audit record %s: %w", id, lastErr)
			}
		}
		ack, err := l.js.PublishMsg(ctx, &nats.Msg{Subject: AuditSubject, Data: data},
			jetstream.WithMsgID(id), jetstream.WithExpectStream(AuditStream), jetstream.WithRetryAttempts(0))
		if err == nil {
			return ack.Sequence, nil
		}
		lastErr = err
		var apiErr *jetstream.APIError
		retry := errors.As(err, &apiErr) && (apiErr.ErrorCode == 10163 || apiErr.ErrorCode == 10158) ||
			errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders)
		if !retry || ctx.Err() != nil {
			break
		}
	}
	return 0, fmt.Errorf("publish audit record %s: %w", id, lastErr)
}

// Fetch returns up to n records from sequence from on, in order (fewer
// at the end of the stream).
func (l *AuditLog) Fetch(ctx context.Context, from uint64, n int) ([]audit.Stored, error) {
	if from == 0 {
		from = 1
	}
	msgs, _, err := directBatch(ctx, l.js.Conn(), AuditStream, AuditSubject, from, from+uint64(n)-1)
	if errors.Is(err, errNoBatch) {
		return l.fetchEach(ctx, from, n)
	}
	if err != nil {
		return nil, fmt.Errorf("fetch audit records from %d: %w", from, err)
	}
	out := make([]audit.Stored, len(msgs))
	for i, m := range msgs {
		out[i] = audit.Stored{Seq: m.seq, Data: m.data}
	}
	return out, nil
}

// fetchEach is Fetch with one direct get per record (servers before 2.11).
func (l *AuditLog) fetchEach(ctx context.Context, from uint64, n int) ([]audit.Stored, error) {
	var out []audit.Stored
	for seq := from; seq < from+uint64(n); seq++ {
		m, err := l.stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("get audit record %d: %w", seq, err)
		}
		out = append(out, audit.Stored{Seq: m.Sequence, Data: m.Data})
	}
	return out, nil
}

// LastSequence is the sequence of the last record published (0: none).
func (l *AuditLog) LastSequence(ctx context.Context) (uint64, error) {
	info, err := l.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("audit stream info: %w", err)
	}
	return info.State.LastSeq, nil
}

// Watch calls fn (without blocking the connection) each time a record is
// published, so that the chain writer copies it at once; stop unsubscribes.
func (l *AuditLog) Watch(fn func()) (stop func() error, err error) {
	sub, err := l.js.Conn().Subscribe(AuditSubject, func(*nats.Msg) { fn() })
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", AuditSubject, err)
	}
	return sub.Unsubscribe, nil
}
