package httpapi

import (
	"testing"
	"time"
)

func TestTokenBucketRefillsAtItsRate(t *testing.T) {
	l := newLimiter(10, 3)
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	for i := 0; i < 3; i++ {
		if ok, _ := l.take("k", t0); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, wait := l.take("k", t0)
	if ok || wait != 100*time.Millisecond {
		t.Fatalf("past the burst: ok %v, wait %s; want a refusal and 100ms", ok, wait)
	}
	if ok, _ := l.take("other", t0); !ok {
		t.Fatal("another key was held back")
	}
	if ok, _ := l.take("k", t0.Add(100*time.Millisecond)); !ok {
		t.Fatal("a token did not come back after 1/rate")
	}
	if ok, _ := newLimiter(-1, 0).take("k", t0); !ok {
		t.Fatal("a negative rate limits")
	}
}

func TestWrongPasswordsDoubleTheWait(t *testing.T) {
	var f failures
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	for i := 0; i < loginFreeFailures; i++ {
		f.failed("vic", t0)
	}
	if w := f.wait("vic", t0); w != 0 {
		t.Fatalf("after %d failures: wait %s, want none", loginFreeFailures, w)
	}
	var waits []time.Duration
	for i := 0; i < 3; i++ {
		f.failed("vic", t0)
		waits = append(waits, f.wait("vic", t0))
	}
	if waits[0] != time.Second || waits[1] != 2*time.Second || waits[2] != 4*time.Second {
		t.Fatalf("waits %v, want 1s 2s 4s", waits)
	}
	for i := 0; i < 30; i++ {
		f.failed("vic", t0)
	}
	if w := f.wait("vic", t0); w != loginMaxWait {
		t.Fatalf("wait after many failures %s, want the cap %s", w, loginMaxWait)
	}
	if w := f.wait("ann", t0); w != 0 {
		t.Fatal("another name waits")
	}
	f.succeeded("vic")
	if w := f.wait("vic", t0); w != 0 {
		t.Fatal("a success did not reset the wait")
	}
}
