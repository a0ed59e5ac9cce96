package httpapi

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
)

// Limits bounds how fast one caller may call the API. Each keel serve
// counts on its own (behind a balancer of N replicas a caller gets up to N
// times the rate).
type Limits struct {
	// Rate and Burst: requests per second per token, and how many may come
	// at once (0: DefaultRate, DefaultBurst; a negative Rate: no limit).
	Rate  float64
	Burst int
	// LoginRate and LoginBurst: password logins and refused tokens per
	// second per source address, counted together (0: DefaultLoginRate,
	// DefaultLoginBurst; a negative LoginRate: no limit).
	LoginRate  float64
	LoginBurst int
	// ProjectOperations bounds the servers of one project with an operation
	// under way (creates, starts, stops, reboots; deletes are never held
	// back): past it, 429 (0: DefaultProjectOperations; negative: none).
	ProjectOperations int
}

// Default limits.
const (
	DefaultRate       = 100
	DefaultBurst      = 200
	DefaultLoginRate  = 2
	DefaultLoginBurst = 10
	// DefaultProjectOperations is the default bound of a project's servers
	// with an operation under way.
	DefaultProjectOperations = 200
	// loginFreeFailures is how many wrong passwords a user name gets before
	// each further one doubles its wait (1 s, 2 s, 4 s ... loginMaxWait).
	loginFreeFailures = 5
	loginMaxWait      = 15 * time.Minute
	// maxBuckets bounds the memory of the limiter: past it, idle buckets go.
	maxBuckets = 100_000
)

// bucket is a token bucket.
type bucket struct {
	tokens float64
	at     time.Time
}

// limiter is a token bucket per key.
type limiter struct {
	rate  float64
	burst float64
	mu    sync.Mutex
	b     map[string]*bucket
}

func newLimiter(rate float64, burst int) *limiter {
	return &limiter{rate: rate, burst: float64(burst), b: map[string]*bucket{}}
}

// take spends one token of key; when there is none it says how long until
// there is one.
func (l *limiter) take(key string, now time.Time) (ok bool, wait time.Duration) {
	if l == nil || l.rate < 0 {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.b[key]
	if b == nil {
		if len(l.b) >= maxBuckets {
			l.evict(now)
		}
		b = &bucket{tokens: l.burst, at: now}
		l.b[key] = b
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.rate)
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// evict drops the buckets full again (idle long enough), else half of them.
func (l *limiter) evict(now time.Time) {
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	for k, b := range l.b {
		if now.Sub(b.at) >= full {
			delete(l.b, k)
		}
	}
	for k := range l.b {
		if len(l.b) < maxBuckets/2 {
			break
		}
		delete(l.b, k)
	}
}

// failures counts wrong passwords per user name.
type failures struct {
	mu sync.Mutex
	n  map[string]*failure
}

type failure struct {
	count int
	until time.Time // no login for this name before
}

// wait says how long a login for name must wait (0: it may try now).
func (f *failures) wait(name string, now time.Time) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e := f.n[name]; e != nil && now.Before(e.until) {
		return e.until.Sub(now)
	}
	return 0
}

// failed records a wrong password for name.
func (f *failures) failed(name string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == nil {
		f.n = map[string]*failure{}
	}
	if len(f.n) >= maxBuckets {
		for k, e := range f.n {
			if now.After(e.until) {
				delete(f.n, k)
			}
		}
	}
	e := f.n[name]
	if e == nil {
		e = &failure{}
		f.n[name] = e
	}
	e.count++
	if e.count > loginFreeFailures {
		e.until = now.Add(min(loginMaxWait, time.Second<<min(e.count-loginFreeFailures-1, 20)))
	}
}

// succeeded forgets the failures of name.
func (f *failures) succeeded(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.n, name)
}

// rateLimits holds the limiters of one API.
type rateLimits struct {
	perToken   *limiter
	perAddr    *limiter
	logins     failures
	projectOps int
}

func newRateLimits(l Limits) *rateLimits {
	if l.Rate == 0 {
		l.Rate = DefaultRate
	}
	if l.Burst <= 0 {
		l.Burst = DefaultBurst
	}
	if l.LoginRate == 0 {
		l.LoginRate = DefaultLoginRate
	}
	if l.LoginBurst <= 0 {
		l.LoginBurst = DefaultLoginBurst
	}
	if l.ProjectOperations == 0 {
		l.ProjectOperations = DefaultProjectOperations
	}
	return &rateLimits{perToken: newLimiter(l.Rate, l.Burst), perAddr: newLimiter(l.LoginRate, l.LoginBurst), projectOps: l.ProjectOperations}
}

// projectBusy refuses a new operation of the caller's project while it has
// as many under way as the bound allows. The count is the read model's: a
// burst may pass it by as many requests as arrive before their servers show
// as busy, which the per-token rate bounds.
func (a *API) projectBusy(ctx context.Context) error {
	bound := a.limits.projectOps
	p, ok := principalFrom(ctx)
	if bound < 0 || !ok || a.Read == nil {
		return nil
	}
	if err := a.waitMinSeq(ctx); err != nil { // count what the caller has seen
		return err
	}
	n, err := a.Read.BusyServersOf(ctx, p.Project)
	if err != nil {
		return a.fail(ctx, err)
	}
	if n >= bound {
		return huma.ErrorWithHeaders(problem(ctx, http.StatusTooManyRequests,
			fmt.Sprintf("project %s has %d servers with an operation under way (the bound is %d); retry when some finish", p.Project, n, bound)),
			http.Header{"Retry-After": {"2"}})
	}
	return nil
}

// sourceAddr is the address a request came from (the peer's: Keel does
// not trust X-Forwarded-For).
func sourceAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// tooMany answers 429 with Retry-After.
func tooMany(w http.ResponseWriter, r *http.Request, wait time.Duration, msg string) {
	secs := int(math.Ceil(wait.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	writeProblem(w, r, http.StatusTooManyRequests, msg+"; retry after "+strconv.Itoa(max(secs, 1))+" s")
}

// limited applies the per-token rate to authenticated requests; the rest
// (logins, refused tokens) count against their source address, before
// any password is checked.
func (a *API) limited(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		if p, ok := principalFrom(r.Context()); ok {
			if ok, wait := a.limits.perToken.take("t:"+p.TokenID, now); !ok {
				tooMany(w, r, wait, "this token is making requests faster than "+strconv.FormatFloat(a.limits.perToken.rate, 'f', -1, 64)+" per second")
				return
			}
		} else if r.Method == http.MethodPost && strings.TrimSuffix(r.URL.Path, "/") == "/v1/tokens" {
			if ok, wait := a.limits.perAddr.take("a:"+sourceAddr(r), now); !ok {
				tooMany(w, r, wait, "too many logins from "+sourceAddr(r))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
