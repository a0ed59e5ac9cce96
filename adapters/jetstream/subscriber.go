package jetstream

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keel-cloud/keel/eventlog"
)

// AckWait is how long a delivered commit may go unacknowledged before
// JetStream delivers it again. It is short so that commits in flight when a
// process died are redelivered soon after a restart; a handler that runs
// longer keeps its commit with progress signals.
const AckWait = 10 * time.Second

// Subscribe implements eventlog.Subscriber with a durable pull consumer
// named sub.Name, filtered on the subjects of sub.AggregateTypes. Its
// position lives in JetStream, so it resumes where it stopped after a
// restart; replicas subscribing under one name share the commits.
func (s *Store) Subscribe(ctx context.Context, sub eventlog.Subscription) error {
	if err := sub.Validate(); err != nil {
		return err
	}
	sub = sub.Defaults()
	cons, err := s.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: sub.Name, FilterSubjects: filterSubjects(sub.AggregateTypes), AckPolicy: jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy, AckWait: AckWait, MaxAckPending: 8192,
		MaxDeliver: -1,
	})
	if ctx.Err() != nil {
		return nil // ended before it started: nothing was handed over
	}
	if err != nil {
		return fmt.Errorf("consumer %s: %w", sub.Name, err)
	}
	queues := make([]chan queued, sub.Workers)
	var wg sync.WaitGroup
	for i := range queues {
		queues[i] = make(chan queued, 64)
		wg.Add(1)
		go func(q chan queued) {
			defer wg.Done()
			for {
				select {
				case m := <-q:
					process(ctx, sub, m.msg)
					m.stop()
				case <-ctx.Done():
					return
				}
			}
		}(queues[i])
	}
	wanted := wantedTypes(sub.AggregateTypes)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if !wanted(m.Subject()) {
			_ = m.Ack() // another aggregate type's commit: see filterSubjects
			return
		}
		env, err := DecodeMsg(m)
		if err != nil {
			sub.Log.Error("undecodable commit; leaving it unacknowledged", "durable", sub.Name, "err", err)
			return
		}
		// Progress signals start now, not when a worker takes the commit:
		// a commit waiting in a queue must not be delivered again behind
		// later commits of its key.
		stop := keepInProgress(m)
		select {
		case queues[sub.WorkerOf(env)] <- queued{m, stop}:
		case <-ctx.Done():
			stop()
		}
	}, jetstream.PullMaxMessages(1024))
	if err != nil {
		return fmt.Errorf("consume %s: %w", sub.Name, err)
	}
	<-ctx.Done()
	cc.Stop()
	wg.Wait()
	return nil
}

// filterSubjects are the subjects of the aggregate types (none: all).
//
// A consumer of several subjects costs the server a walk of every subject
// of a message block each time it looks for the next commit
// (firstMatchingMulti): with one subject per aggregate, that was a quarter
// of the whole node's CPU and held the saga (server and operation commits)
// to 50-70 builds/s on 2 cores. So several types share one filter, the
// whole log, and the subscriber acknowledges the others' commits itself
// (wantedTypes), reading only their subjects.
func filterSubjects(types []string) []string {
	if len(types) != 1 {
		return []string{SubjectPrefix + ">"}
	}
	return []string{SubjectPrefix + types[0] + ".>"}
}

// wantedTypes tells whether a commit's subject is of one of the types
// (none: all).
func wantedTypes(types []string) func(subject string) bool {
	if len(types) <= 1 {
		return func(string) bool { return true } // the filter did it
	}
	prefixes := make([]string, len(types))
	for i, t := range types {
		prefixes[i] = SubjectPrefix + t + "."
	}
	return func(subject string) bool {
		for _, p := range prefixes {
			if strings.HasPrefix(subject, p) {
				return true
			}
		}
		return false
	}
}

func process(ctx context.Context, sub eventlog.Subscription, m jetstream.Msg) {
	if ctx.Err() != nil {
		return // left unacknowledged: redelivered after a restart
	}
	env, err := DecodeMsg(m)
	if err != nil {
		sub.Log.Error("undecodable commit; leaving it unacknowledged", "durable", sub.Name, "err", err)
		return
	}
	// Retry in place: later commits of the same key wait, so their order
	// holds. Left unacknowledged when ctx ends: redelivered after a restart.
	if sub.HandleWithRetry(ctx, env) {
		_ = m.Ack()
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
