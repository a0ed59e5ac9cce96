package projections

import (
	"context"
	"errors"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/eventlog"
)

// decodedBatch is a batch of commits with their decoded events.
type decodedBatch struct {
	envs    []domain.Envelope
	decoded [][]domain.Event
}

// followAhead is Follow with read-ahead: while fn writes one batch to
// Postgres, the next ones are read from the log and decoded (at most two
// ahead). fn still sees the batches one at a time, in order. It returns
// fn's first error, or Follow's.
func followAhead(ctx context.Context, f eventlog.Follower, from, to uint64, fn func(envs []domain.Envelope, decoded [][]domain.Event) error) error {
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ahead := make(chan decodedBatch, 2)
	followed := make(chan error, 1)
	go func() {
		defer close(ahead)
		followed <- f.Follow(fctx, from, to, func(envs []domain.Envelope) error {
			decoded, err := decodeAll(envs)
			if err != nil {
				return err
			}
			select {
			case ahead <- decodedBatch{envs, decoded}:
				return nil
			case <-fctx.Done():
				return nil
			}
		})
	}()
	var applyErr error
	for b := range ahead {
		if applyErr != nil {
			continue // drain until the reader stops
		}
		if applyErr = fn(b.envs, b.decoded); applyErr != nil {
			cancel()
		}
	}
	return errors.Join(applyErr, <-followed)
}
