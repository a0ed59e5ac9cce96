package lease

import (
	"context"
	"sync"
	"time"
)

// Memory is a Store in memory, for tests of code that runs under a lease:
// every campaigner in one process shares it. Fail, when set, makes every
// call of the holder it names fail, as a network partition would.
type Memory struct {
	Hold time.Duration // the TTL

	mu     sync.Mutex
	leases map[string]memHold
	rev    uint64
	fail   map[string]error
}

type memHold struct {
	holder string
	rev    uint64
	until  time.Time
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty store whose holds last ttl.
func NewMemory(ttl time.Duration) *Memory {
	return &Memory{Hold: ttl, leases: map[string]memHold{}, fail: map[string]error{}}
}

// Fail makes the calls of holder return err from now on (nil: succeed again).
func (m *Memory) Fail(holder string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail[holder] = err
}

// Holder is who holds name now ("" when nobody does).
func (m *Memory) Holder(name string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if h, ok := m.leases[name]; ok && time.Now().Before(h.until) {
		return h.holder
	}
	return ""
}

// TTL implements Store.
func (m *Memory) TTL() time.Duration { return m.Hold }

// Acquire implements Store.
func (m *Memory) Acquire(_ context.Context, name, holder string) (uint64, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fail[holder]; err != nil {
		return 0, false, err
	}
	if h, ok := m.leases[name]; ok && time.Now().Before(h.until) {
		return 0, false, nil
	}
	return m.put(name, holder), true, nil
}

// Renew implements Store.
func (m *Memory) Renew(_ context.Context, name, holder string, rev uint64) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fail[holder]; err != nil {
		return 0, err
	}
	if h, ok := m.leases[name]; !ok || h.rev != rev || !time.Now().Before(h.until) {
		return 0, ErrLost
	}
	return m.put(name, holder), nil
}

// Release implements Store.
func (m *Memory) Release(_ context.Context, name string, rev uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, ok := m.leases[name]
	if !ok || h.rev != rev || !time.Now().Before(h.until) {
		return ErrLost
	}
	if err := m.fail[h.holder]; err != nil {
		return err
	}
	delete(m.leases, name)
	return nil
}

func (m *Memory) put(name, holder string) uint64 {
	m.rev++
	m.leases[name] = memHold{holder: holder, rev: m.rev, until: time.Now().Add(m.Hold)}
	return m.rev
}
