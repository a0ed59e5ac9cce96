package jetstream

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/eventlog"
)

// Follow implements eventlog.Follower with an ordered (ephemeral, flow
// controlled) consumer from sequence from: projections and rebuilds read
// the stream with it, without a durable position of their own.
func (s *Store) Follow(ctx context.Context, from, to uint64, fn func([]domain.Envelope) error) error {
	if from == 0 {
		from = 1
	}
	if to > 0 && from > to {
		return nil // nothing to hand over
	}
	cons, err := s.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from,
	})
	if err != nil {
		return fmt.Errorf("ordered consumer from %d: %w", from, err)
	}
	msgs := make(chan jetstream.Msg, 4*eventlog.MaxBatch)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel() // unblocks the callback when fn fails with a full buffer
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case msgs <- m:
		case <-cctx.Done():
		}
	}, jetstream.PullMaxMessages(2*eventlog.MaxBatch))
	if err != nil {
		return fmt.Errorf("consume from %d: %w", from, err)
	}
	defer cc.Stop()
	for {
		var batch []domain.Envelope
		select {
		case <-ctx.Done():
			return nil
		case m := <-msgs:
			env, err := DecodeMsg(m)
			if err != nil {
				return err
			}
			batch = append(batch, env)
		}
	drain:
		for len(batch) < eventlog.MaxBatch && (to == 0 || batch[len(batch)-1].Sequence < to) {
			select {
			case m := <-msgs:
				env, err := DecodeMsg(m)
				if err != nil {
					return err
				}
				batch = append(batch, env)
			default:
				break drain
			}
		}
		if to > 0 {
			batch = upTo(batch, to)
		}
		if err := fn(batch); err != nil {
			return err
		}
		if to > 0 && len(batch) > 0 && batch[len(batch)-1].Sequence >= to {
			return nil
		}
	}
}

func upTo(batch []domain.Envelope, to uint64) []domain.Envelope {
	for i, e := range batch {
		if e.Sequence > to {
			return batch[:i]
		}
	}
	return batch
}
