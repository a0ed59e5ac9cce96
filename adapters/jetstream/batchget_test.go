package jetstream

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/keel-cloud/keel/domain"
)

// The batch direct get returns exactly what one direct get per commit
// returns, across several batches and with other subjects in between, and
// the server in use answers it (no silent fallback).
func TestBatchGetMatchesOneGetPerCommit(t *testing.T) {
	e, err := StartEmbedded(EmbeddedOptions{StoreDir: t.TempDir(), SyncAlways: false})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, e.Conn, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	var last, other uint64
	for v := uint64(1); v <= 3*batchSize/2*2; v++ {
		if last, _, err = s.Append(ctx, commit("long", v), last); err != nil {
			t.Fatal(err)
		}
		if v%3 == 0 {
			if other, _, err = s.Append(ctx, commit("other", v/3), other); err != nil {
				t.Fatal(err)
			}
		}
	}
	subj := Subject("server", "long")
	lastMsg, err := s.stream.GetLastMsgForSubject(ctx, subj)
	if err != nil {
		t.Fatal(err)
	}
	for _, from := range []uint64{1, 2, 700, lastMsg.Sequence - 1} {
		batch, err := s.loadBatch(ctx, subj, from, lastMsg.Sequence-1)
		if err != nil {
			t.Fatalf("batch from %d: %v", from, err)
		}
		each, err := s.loadEach(ctx, subj, from, lastMsg)
		if err != nil {
			t.Fatal(err)
		}
		each = each[:len(each)-1] // loadEach ends with the last message
		if len(batch) != len(each) {
			t.Fatalf("from %d: batch read %d commits, one by one %d", from, len(batch), len(each))
		}
		for i := range each {
			env, err := decodeEnvelope(batch[i].data, batch[i].seq)
			env.Raw, each[i].Raw = nil, nil
			if err != nil || !reflect.DeepEqual(env, each[i]) {
				t.Fatalf("from %d, commit %d: batch %+v, one by one %+v (%v)", from, i, env, each[i], err)
			}
		}
	}
	if envs, err := s.Load(ctx, "server", "long", 0); err != nil || len(envs) != 3*batchSize/2*2 || envs[len(envs)-1].Sequence != lastMsg.Sequence {
		t.Fatalf("Load = %d commits, %v", len(envs), err)
	}
}

func commit(id string, v uint64) *domain.Envelope {
	raw, _ := domain.Encode([]domain.Event{})
	return &domain.Envelope{CommandID: fmt.Sprintf("%s-%d", id, v), AggregateType: "server", AggregateID: id,
		Version: v, Events: raw, OccurredAt: time.Unix(int64(v), 0).UTC()}
}
