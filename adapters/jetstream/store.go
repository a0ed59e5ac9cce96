package jetstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/eventlog"
)

var _ eventlog.Log = (*Store)(nil)

// StreamName is the one stream that holds every commit.
const StreamName = "KEEL_EVENTS"

// SubjectPrefix starts every event subject: keel.events.<aggregate>.<id>.
const SubjectPrefix = "keel.events."

// Subject returns the subject of one aggregate.
func Subject(aggregateType, id string) string {
	return SubjectPrefix + aggregateType + "." + id
}

// Store is the event log on KEEL_EVENTS: it implements eventlog.Log.
type Store struct {
	JS     jetstream.JetStream
	stream jetstream.Stream
	// Replicas is 1 on the embedded server and 3 on a cluster.
	Replicas int
}

// DefaultDuplicateWindow is how long JetStream remembers command ids.
// Idempotency does not rest on it: the command id is also checked against
// the aggregate's own commits, and API answers are kept in a KV bucket.
const DefaultDuplicateWindow = 2 * time.Minute

// Open connects the store to the stream, creating or updating it.
// dupWindow 0 means DefaultDuplicateWindow.
func Open(ctx context.Context, nc *nats.Conn, replicas int, dupWindow time.Duration) (*Store, error) {
	if dupWindow <= 0 {
		dupWindow = DefaultDuplicateWindow
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream context: %w", err)
	}
	if replicas < 1 {
		replicas = 1
	}
	cfg := jetstream.StreamConfig{
		Name:        StreamName,
		Description: "Keel event log: one subject per aggregate, one message per commit",
		Subjects:    []string{SubjectPrefix + ">"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxMsgs:     -1, MaxBytes: -1, MaxAge: 0, MaxMsgsPerSubject: -1,
		Discard:     jetstream.DiscardOld,
		DenyDelete:  true,
		DenyPurge:   true,
		AllowDirect: true,
		Duplicates:  dupWindow,
		Replicas:    replicas,
		MaxMsgSize:  4 << 20,
	}
	s, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create stream %s: %w", StreamName, err)
	}
	return &Store{JS: js, stream: s, Replicas: replicas}, nil
}

// Attach connects to an existing stream without changing its configuration
// (agents use it; keel serve owns the stream).
func Attach(ctx context.Context, nc *nats.Conn) (*Store, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream context: %w", err)
	}
	s, err := js.Stream(ctx, StreamName)
	if err != nil {
		return nil, fmt.Errorf("find stream %s (is keel serve running?): %w", StreamName, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream info: %w", err)
	}
	return &Store{JS: js, stream: s, Replicas: info.Config.Replicas}, nil
}

// Append publishes one commit if the aggregate's last commit is still at
// expectedSeq (0: the aggregate has no commit yet), with
// Nats-Expected-Last-Subject-Sequence, and returns the commit's stream
// sequence; eventlog.ErrConcurrency when another writer moved the aggregate
// on. A retried append that already landed is recognised by its command id
// (Nats-Msg-Id) and reported as landed.
//
// duplicate is true when the command id had landed before this call
// (JetStream's duplicate window, or the single-server retry trap): the
// caller must then read the commit instead of trusting its own events.
func (s *Store) Append(ctx context.Context, env *domain.Envelope, expectedSeq uint64) (seq uint64, duplicate bool, err error) {
	data, err := json.Marshal(env)
	if err != nil {
		return 0, false, fmt.Errorf("encode commit: %w", err)
	}
	subj := Subject(env.AggregateType, env.AggregateID)
	msg := &nats.Msg{Subject: subj, Data: data, Header: nats.Header{}}
	var lastErr error
	for attempt := 0; attempt < 8; attempt++ {
		if attempt > 0 {
			if err := sleep(ctx, time.Duration(attempt*attempt)*20*time.Millisecond); err != nil {
				return 0, false, err
			}
		}
		ack, err := s.JS.PublishMsg(ctx, msg, jetstream.WithMsgID(env.CommandID),
			jetstream.WithExpectLastSequencePerSubject(expectedSeq), jetstream.WithRetryAttempts(0))
		if err == nil {
			return ack.Sequence, ack.Duplicate, nil
		}
		lastErr = err
		var apiErr *jetstream.APIError
		switch {
		case errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant):
			seq, err := s.landedOrConflict(ctx, subj, env.CommandID)
			return seq, err == nil, err
		case errors.As(err, &apiErr) && (apiErr.ErrorCode == 10163 || apiErr.ErrorCode == 10158):
			continue // transient on a cluster: retry
		case errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
			errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders):
			if ctx.Err() != nil {
				return 0, false, fmt.Errorf("append to %s: %w", subj, err)
			}
			continue // the append may or may not have landed; the retry tells
		default:
			return 0, false, fmt.Errorf("append to %s: %w", subj, err)
		}
	}
	return 0, false, fmt.Errorf("append to %s: gave up: %w", subj, lastErr)
}

// landedOrConflict reads the subject's last commit: if it carries our
// command id, our earlier attempt landed; otherwise someone else moved on.
func (s *Store) landedOrConflict(ctx context.Context, subj, commandID string) (uint64, error) {
	if commandID == "" {
		return 0, eventlog.ErrConcurrency // without an id, no commit can be recognised as ours
	}
	m, err := s.stream.GetLastMsgForSubject(ctx, subj)
	if err != nil {
		return 0, fmt.Errorf("check last commit of %s: %w", subj, err)
	}
	var env domain.Envelope
	if err := json.Unmarshal(m.Data, &env); err == nil && env.CommandID == commandID {
		return m.Sequence, nil
	}
	return 0, eventlog.ErrConcurrency
}

// Load returns the aggregate's commits with a stream sequence above after,
// in order, by direct gets on its subject (no consumer is created).
func (s *Store) Load(ctx context.Context, aggregateType, id string, after uint64) ([]domain.Envelope, error) {
	subj := Subject(aggregateType, id)
	last, err := s.stream.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", subj, err)
	}
	if last.Sequence <= after {
		return nil, nil
	}
	if after+1 < last.Sequence {
		return s.loadRange(ctx, subj, after+1, last)
	}
	env, err := decodeEnvelope(last.Data, last.Sequence)
	if err != nil {
		return nil, err
	}
	return []domain.Envelope{env}, nil
}

// loadRange reads the commits of subj from sequence from to last (the
// subject's last message, already read): in batches where the server
// supports them, else one direct get per commit.
func (s *Store) loadRange(ctx context.Context, subj string, from uint64, last *jetstream.RawStreamMsg) ([]domain.Envelope, error) {
	msgs, err := s.loadBatch(ctx, subj, from, last.Sequence-1)
	if errors.Is(err, errNoBatch) {
		return s.loadEach(ctx, subj, from, last)
	}
	if err != nil {
		return nil, err
	}
	out := make([]domain.Envelope, 0, len(msgs)+1)
	for _, m := range append(msgs, stored{seq: last.Sequence, data: last.Data}) {
		env, err := decodeEnvelope(m.data, m.seq)
		if err != nil {
			return nil, err
		}
		out = append(out, env)
	}
	return out, nil
}

// loadEach reads the commits of subj from sequence from to last with one
// direct get each.
func (s *Store) loadEach(ctx context.Context, subj string, from uint64, last *jetstream.RawStreamMsg) ([]domain.Envelope, error) {
	var out []domain.Envelope
	var err error
	for seq := from; ; {
		m := last
		if seq < last.Sequence {
			if m, err = s.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subj)); err != nil {
				return nil, fmt.Errorf("load %s from %d: %w", subj, seq, err)
			}
		}
		env, err := decodeEnvelope(m.Data, m.Sequence)
		if err != nil {
			return nil, err
		}
		out = append(out, env)
		if m.Sequence >= last.Sequence {
			return out, nil
		}
		seq = m.Sequence + 1
	}
}

// Get returns the commit at one stream sequence.
func (s *Store) Get(ctx context.Context, seq uint64) (domain.Envelope, error) {
	m, err := s.stream.GetMsg(ctx, seq)
	if err != nil {
		return domain.Envelope{}, fmt.Errorf("get commit %d: %w", seq, err)
	}
	return decodeEnvelope(m.Data, m.Sequence)
}

// LastSequence returns the stream's last sequence (0 when empty).
func (s *Store) LastSequence(ctx context.Context) (uint64, error) {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream info: %w", err)
	}
	return info.State.LastSeq, nil
}

// Stream gives consumers access to the stream.
func (s *Store) Stream() jetstream.Stream { return s.stream }

func decodeEnvelope(data []byte, seq uint64) (domain.Envelope, error) {
	var env domain.Envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return env, fmt.Errorf("decode commit %d: %w", seq, err)
	}
	env.Sequence, env.Raw = seq, data
	return env, nil
}

// DecodeMsg turns a consumed message into an envelope.
func DecodeMsg(m jetstream.Msg) (domain.Envelope, error) {
	md, err := m.Metadata()
	if err != nil {
		return domain.Envelope{}, fmt.Errorf("message metadata: %w", err)
	}
	return decodeEnvelope(m.Data(), md.Sequence.Stream)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
