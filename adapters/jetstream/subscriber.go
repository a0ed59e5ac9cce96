package jetstream

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keel-cloud/keel/domain"
)

// AckWait is how long a delivered commit may go unacknowledged before
// JetStream delivers it again. It is short so that commits in flight when a
// process died are redelivered soon after a restart; a handler that runs
// longer keeps its commit with progress signals.
const AckWait = 10 * time.Second

// Subscription describes a durable subscriber to the event log: sagas,
// agents, billing and audit. Its position lives in JetStream under Durable,
// so it resumes where it stopped after a restart.
type Subscription struct {
	// Durable is the consumer name, versioned: renaming it re-consumes the stream.
	Durable string
	// Subjects filters the stream (e.g. keel.events.server.>).
	Subjects []string
	// Workers is the number of parallel workers; commits with the same
	// Key are always handled by the same worker, in stream order.
	Workers int
	// Key picks the ordering key of a commit (default: its aggregate id).
	Key func(env domain.Envelope) string
	// Handle processes one commit. A nil error acknowledges it; an error
	// has it redelivered after a delay.
	Handle func(ctx context.Context, env domain.Envelope) error
	Log    *slog.Logger
}

// Run consumes until ctx ends.
func (s Subscription) Run(ctx context.Context, stream jetstream.Stream) error {
	if s.Workers < 1 {
		s.Workers = 1
	}
	if s.Key == nil {
		s.Key = func(env domain.Envelope) string { return env.AggregateID }
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: s.Durable, FilterSubjects: s.Subjects, AckPolicy: jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy, AckWait: AckWait, MaxAckPending: 8192,
		MaxDeliver: -1,
	})
	if err != nil {
		return fmt.Errorf("consumer %s: %w", s.Durable, err)
	}
	queues := make([]chan queued, s.Workers)
	var wg sync.WaitGroup
	for i := range queues {
		queues[i] = make(chan queued, 64)
		wg.Add(1)
		go func(q chan queued) {
			defer wg.Done()
			for {
				select {
				case m := <-q:
					s.process(ctx, m.msg)
					m.stop()
				case <-ctx.Done():
					return
				}
			}
		}(queues[i])
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		env, err := DecodeMsg(m)
		if err != nil {
			s.Log.Error("undecodable commit; leaving it unacknowledged", "durable", s.Durable, "err", err)
			return
		}
		h := fnv.New32a()
		h.Write([]byte(s.Key(env)))
		// Progress signals start now, not when a worker takes the commit:
		// a commit waiting in a queue must not be delivered again behind
		// later commits of its key.
		stop := keepInProgress(m)
		select {
		case queues[int(h.Sum32())%s.Workers] <- queued{m, stop}:
		case <-ctx.Done():
			stop()
		}
	}, jetstream.PullMaxMessages(1024))
	if err != nil {
		return fmt.Errorf("consume %s: %w", s.Durable, err)
	}
	<-ctx.Done()
	cc.Stop()
	wg.Wait()
	return nil
}

func (s Subscription) process(ctx context.Context, m jetstream.Msg) {
	if ctx.Err() != nil {
		return // left unacknowledged: redelivered after a restart
	}
	env, err := DecodeMsg(m)
	if err != nil {
		s.Log.Error("undecodable commit; leaving it unacknowledged", "durable", s.Durable, "err", err)
		return
	}
	// Retry in place: later commits of the same key wait, so their order
	// holds. Handlers ignore refusals, so what fails here is transient.
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		err := s.Handle(ctx, env)
		if err == nil {
			_ = m.Ack()
			return
		}
		if ctx.Err() != nil {
			return // left unacknowledged: redelivered after a restart
		}
		s.Log.Warn("subscriber retries commit", "durable", s.Durable, "seq", env.Sequence, "in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// queued is a delivered commit waiting for its worker, with the function
// that stops its progress signals.
type queued struct {
	msg  jetstream.Msg
	stop func()
}

// keepInProgress tells JetStream the commit is still being worked on until
// the returned function is called.
func keepInProgress(m jetstream.Msg) func() {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = m.InProgress()
			}
		}
	}()
	return func() { close(done) }
}
