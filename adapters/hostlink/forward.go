package hostlink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keel-cloud/keel/adapters/agent"
)

// handedWork is what a host is handed: a piece of work and the token it
// says "in progress" and "done" with (the JetStream ack subject of the
// piece; keel serve checks it is that host's before it acknowledges).
type handedWork struct {
	Ack  string          `json:"ack"`
	Work json.RawMessage `json:"work"`
}

// handReply is a host's answer to being handed work.
type handReply struct {
	Error string `json:"error,omitempty"`
}

// Forwarder reads the work streams in keel serve and hands each piece to
// its host, in order per host. A host that does not answer gets the piece
// again a few seconds later; one that took it acknowledges it through the
// Service when it is done.
type Forwarder struct {
	JS  jetstream.JetStream
	NC  *nats.Conn
	Log *slog.Logger
	// Retry is how long an unanswered piece waits before it is handed out
	// again (default 5 s).
	Retry time.Duration
	// StillAsked, when set, drops a piece no longer asked of its host
	// (Dispatcher.StillAsked).
	StillAsked func(ctx context.Context, w agent.Work) (bool, error)
}

// Run forwards until ctx ends.
func (f *Forwarder) Run(ctx context.Context) error {
	if f.Retry <= 0 {
		f.Retry = 5 * time.Second
	}
	var stops []func()
	for _, sim := range []bool{false, true} {
		sp := spaceOf(sim)
		cons, err := f.JS.CreateOrUpdateConsumer(ctx, sp.stream, jetstream.ConsumerConfig{Durable: ForwarderConsumer,
			FilterSubject: sp.work + "*", AckPolicy: jetstream.AckExplicitPolicy, AckWait: workAckWait, MaxAckPending: 20000})
		if err != nil {
			return fmt.Errorf("read the work stream %s: %w", sp.stream, err)
		}
		q := &keyed[jetstream.Msg]{queues: map[string][]jetstream.Msg{}}
		hand := func(m jetstream.Msg) { f.hand(ctx, m, sim) }
		cc, err := cons.Consume(func(m jetstream.Msg) {
			q.push(strings.TrimPrefix(m.Subject(), sp.work), m, hand)
		}, jetstream.PullMaxMessages(1000))
		if err != nil {
			return fmt.Errorf("read the work stream %s: %w", sp.stream, err)
		}
		stops = append(stops, func() { cc.Drain(); <-cc.Closed(); q.wait() })
	}
	<-ctx.Done()
	for _, stop := range stops {
		stop()
	}
	return nil
}

// hand gives one piece of work to its host.
func (f *Forwarder) hand(ctx context.Context, m jetstream.Msg, sim bool) {
	hostID := strings.TrimPrefix(m.Subject(), spaceOf(sim).work)
	if f.StillAsked != nil {
		var w agent.Work
		if json.Unmarshal(m.Data(), &w) != nil {
			_ = m.Term()
			return
		}
		asked, err := f.StillAsked(ctx, w)
		if err != nil {
			_ = m.NakWithDelay(f.Retry)
			return
		}
		if !asked {
			f.Log.Info("work no longer asked of its host; dropped", "host", w.Host, "server", w.Server, "kind", w.Kind)
			_ = m.Ack()
			return
		}
	}
	data, err := json.Marshal(handedWork{Ack: m.Reply(), Work: m.Data()})
	if err != nil {
		_ = m.Term()
		return
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	reply, err := f.NC.RequestWithContext(rctx, workRequestSubject(hostID, sim), data)
	if err == nil {
		var r handReply
		if jerr := json.Unmarshal(reply.Data, &r); jerr != nil {
			err = jerr
		} else if r.Error != "" {
			err = errors.New(r.Error)
		}
	}
	if err != nil {
		if ctx.Err() == nil && !errors.Is(err, nats.ErrNoResponders) {
			f.Log.Debug("host did not take its work; handed again later", "host_id", hostID, "err", err)
		}
		_ = m.NakWithDelay(f.Retry)
	}
}

// ackSubject is a piece of work's JetStream ack subject, read.
type ackSubject struct {
	stream, consumer string
	seq              uint64
}

// parseAck reads $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>
// (and the longer form with a domain and an account hash).
func parseAck(s string) (ackSubject, bool) {
	t := strings.Split(s, ".")
	if len(t) < 2 || t[0] != "$JS" || t[1] != "ACK" {
		return ackSubject{}, false
	}
	t = t[2:]
	switch len(t) {
	case 7:
	case 10, 11: // domain, account hash, then the same
		t = t[len(t)-7:]
	default:
		return ackSubject{}, false
	}
	seq, err := strconv.ParseUint(t[3], 10, 64)
	if err != nil {
		return ackSubject{}, false
	}
	return ackSubject{stream: t[0], consumer: t[1], seq: seq}, true
}

type progressRequest struct {
	Ack string `json:"ack"`
	// Outcome ends the piece: "ack" (done), "nak" (hand it out again),
	// "term" (given up); "" says it is in progress.
	Outcome string `json:"outcome,omitempty"`
}

// progress acknowledges, for host hostID, a piece of work handed to it,
// once it has checked that the piece is that host's.
func (s *Service) progress(ctx context.Context, hostID string, sim bool, r progressRequest) error {
	a, ok := parseAck(r.Ack)
	sp := spaceOf(sim)
	if !ok || a.stream != sp.stream || a.consumer != ForwarderConsumer {
		s.Log.Warn("refused: a host answered for work that is not a piece of work", "host_id", hostID, "ack", r.Ack)
		return refusef("not a piece of work")
	}
	if s.JS == nil {
		return refusef("this control plane hands out no work")
	}
	st, err := s.JS.Stream(ctx, a.stream)
	if err != nil {
		return err
	}
	msg, err := st.GetMsg(ctx, a.seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil // acknowledged already
	}
	if err != nil {
		return err
	}
	if msg.Subject != WorkSubject(hostID, sim) {
		s.Log.Warn("refused: a host answered for another host's work", "host_id", hostID, "subject", msg.Subject, "seq", a.seq)
		return refusef("that piece of work is not this host's")
	}
	body := map[string]string{"": "+WPI", "ack": "+ACK", "nak": "-NAK", "term": "+TERM"}[r.Outcome]
	if body == "" {
		return refusef("unknown outcome %q", r.Outcome)
	}
	return s.NC.Publish(r.Ack, []byte(body))
}
