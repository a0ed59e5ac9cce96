package jetstream

import (
	"context"

	"github.com/nats-io/nats.go"
)

// Responder answers requests on a subject over core NATS (not the event
// log): host agents answer console-log requests with it. Each answer runs
// on the subscription's goroutine.
func Responder(nc *nats.Conn) func(subject string, answer func(data []byte) []byte) (func(), error) {
	return func(subject string, answer func(data []byte) []byte) (func(), error) {
		sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
			_ = m.Respond(answer(m.Data)) // the requester times out if this is lost
		})
		if err != nil {
			return nil, err
		}
		return func() { _ = sub.Unsubscribe() }, nil
	}
}

// Requester sends a request over core NATS and returns the answer's data;
// with no one subscribed it fails at once with nats.ErrNoResponders.
func Requester(nc *nats.Conn) func(ctx context.Context, subject string, data []byte) ([]byte, error) {
	return func(ctx context.Context, subject string, data []byte) ([]byte, error) {
		m, err := nc.RequestWithContext(ctx, subject, data)
		if err != nil {
			return nil, err
		}
		return m.Data, nil
	}
}
