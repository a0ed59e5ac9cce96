package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keel-cloud/keel/adapters/postgres/pgtest"
	"github.com/keel-cloud/keel/api"
)

// proc is a `keel serve` child process.
type proc struct {
	cmd   *exec.Cmd
	url   string
	log   *bytes.Buffer
	token string // the admin's, once serve logged in
}

// client is the API of the process, logged in as admin.
func (p *proc) client() *api.Client { return api.New(p.url).WithToken(p.token) }

// auth is the header post sends the admin's token in.
func (p *proc) auth() string { return "Authorization: Bearer " + p.token }

var (
	binDir   string
	binOnce  sync.Once
	binErr   error
	binBuilt string
)

// buildKeel builds the keel binary once per test run.
func buildKeel(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "keel-bin-"); binErr != nil {
			return
		}
		binBuilt = filepath.Join(binDir, "keel")
		out, err := exec.Command("go", "build", "-race", "-o", binBuilt, "github.com/keel-cloud/keel/cmd/keel").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("build keel: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binBuilt
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func serve(t *testing.T, bin, dataDir, dbURL, addr string, extra ...string) *proc {
	t.Helper()
	p := &proc{url: "http://" + addr, log: &bytes.Buffer{}}
	args := append([]string{"serve", "--data-dir", dataDir, "--listen", addr, "--fake-hosts", "4", "--fake-latency", "20ms", "--rate-limit", "-1", "--project-operations", "-1"}, extra...)
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), "KEEL_DATABASE_URL="+dbURL, "KEEL_ADMIN_PASSWORD="+adminPassword)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, func() error {
		r, err := http.Get(p.url + "/readyz")
		if err != nil {
			return err
		}
		r.Body.Close()
		if r.StatusCode != 200 {
			return fmt.Errorf("readyz %d", r.StatusCode)
		}
		return nil
	})
	_, tok, err := api.Login(context.Background(), api.New(p.url), "admin", adminPassword, "")
	if err != nil {
		t.Fatalf("log in to keel serve: %v\n%s", err, p.log)
	}
	p.token = tok.Secret
	return p
}

// killAfter waits until count() reaches n (under mu), then kills the
// process with SIGKILL and reaps it; it returns count() at the kill.
func (p *proc) killAfter(t *testing.T, within time.Duration, mu *sync.Mutex, n int, count func() int) int {
	t.Helper()
	eventually(t, within, func() error {
		mu.Lock()
		defer mu.Unlock()
		if c := count(); c < n {
			return fmt.Errorf("%d of %d done before the kill", c, n)
		}
		return nil
	})
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
	mu.Lock()
	defer mu.Unlock()
	return count()
}

// post POSTs body as JSON (DELETEs when body is nil), with headers given
// as "Name: value"; it returns the status and body of the answer.
func post(url string, body any, headers ...string) (int, []byte, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	method := "POST"
	if body == nil {
		method = "DELETE"
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(raw))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

func TestKill9LosesNoAcknowledgedCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a keel serve process")
	}
	bin := buildKeel(t)
	dataDir, dbURL, addr := t.TempDir(), pgtest.NewDatabase(t), freeAddr(t)
	p := serve(t, bin, dataDir, dbURL, addr)
	defer func() {
		if t.Failed() {
			t.Logf("keel serve output:\n%s", p.log.String())
		}
	}()
	// The creates name the image after the upload has reached the read model.
	seq := seedOver(t, p.client())
	minSeq := "Keel-Min-Sequence: " + strconv.FormatUint(seq, 10)

	// Fire creates and deletes; kill -9 while they are in flight.
	var mu sync.Mutex
	// server id -> what happened to its delete: "" none sent, "sent" no
	// answer (it may or may not have landed), "acked" acknowledged.
	acked := map[string]string{}
	var wg sync.WaitGroup
	for i := 0; i < 300; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			time.Sleep(time.Duration(i) * time.Millisecond)
			code, body, err := post(p.url+"/v1/servers", map[string]any{"name": fmt.Sprintf("k-%d", i), "flavor": "small", "image": "tiny"}, minSeq, p.auth())
			if err != nil || code != 202 {
				return // not acknowledged
			}
			var a api.Accepted
			if err := json.Unmarshal(body, &a); err != nil {
				t.Errorf("create %d acknowledged with %s: %v", i, body, err)
				return
			}
			mu.Lock()
			acked[a.Server.ID] = ""
			if i%3 == 0 {
				acked[a.Server.ID] = "sent"
			}
			mu.Unlock()
			if i%3 == 0 {
				if code, _, err := post(p.url+"/v1/servers/"+a.Server.ID, nil, p.auth()); err == nil && code == 202 {
					mu.Lock()
					acked[a.Server.ID] = "acked"
					mu.Unlock()
				}
			}
		}(i)
	}
	p.killAfter(t, 30*time.Second, &mu, 60, func() int { return len(acked) })
	wg.Wait()
	if len(acked) == 0 || len(acked) == 300 {
		t.Fatalf("the kill should land mid-way; %d creates were acknowledged", len(acked))
	}
	t.Logf("%d creates acknowledged before kill -9", len(acked))

	p = serve(t, bin, dataDir, dbURL, addr)
	defer func() { _ = p.cmd.Process.Signal(syscall.SIGINT); _ = p.cmd.Wait() }()
	db, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	eventually(t, 90*time.Second, func() error {
		var open int
		if err := db.QueryRow(context.Background(), `SELECT count(*) FROM operations WHERE status NOT IN ('succeeded','failed')`).Scan(&open); err != nil {
			return err
		}
		if open > 0 {
			// Say which, for the failure message.
			var desc []string
			rows, err := db.Query(context.Background(), `SELECT kind, status, coalesce(current_step, ''), coalesce(deadline::text, ''), resource_id::text, updated_at::text
				FROM operations WHERE status NOT IN ('succeeded','failed') LIMIT 5`)
			if err == nil {
				for rows.Next() {
					var k, st, step, dl, res, up string
					if rows.Scan(&k, &st, &step, &dl, &res, &up) == nil {
						desc = append(desc, fmt.Sprintf("%s %s step %q deadline %s server %s updated %s", k, st, step, dl, res, up))
					}
				}
				rows.Close()
				if len(desc) > 0 {
					// The first one's server, commit by commit.
					res := strings.Fields(desc[0])[8]
					evs, err := db.Query(context.Background(), `SELECT seq, array_to_string(types, ','), occurred_at::text FROM events WHERE aggregate_id = $1 OR envelope->>'correlation_id' IN (SELECT id::text FROM operations WHERE resource_id::text = $1) ORDER BY seq`, res)
					if err == nil {
						for evs.Next() {
							var seq int64
							var types, at string
							if evs.Scan(&seq, &types, &at) == nil {
								desc = append(desc, fmt.Sprintf("\n  %d %s %s", seq, types, at))
							}
						}
						evs.Close()
					}
				}
			}
			return fmt.Errorf("%d operations still open: %v", open, desc)
		}
		return nil
	})
	for id, del := range acked {
		var n int
		if err := db.QueryRow(context.Background(), `SELECT count(*) FROM events WHERE aggregate_id=$1 AND 'server.created' = ANY(types)`, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("acknowledged server %s has %d server.created commits", id, n)
		}
		var status string
		err := db.QueryRow(context.Background(), `SELECT status FROM servers WHERE id=$1`, id).Scan(&status)
		switch {
		case del == "acked" && err == nil:
			t.Fatalf("server %s: delete was acknowledged but it is %s", id, status)
		case del == "" && err != nil:
			t.Fatalf("server %s: create was acknowledged but the read model lost it: %v", id, err)
		}
	}
	// Projections resumed without doubling: one row per commit, none missing.
	var rows, maxSeq int64
	if err := db.QueryRow(context.Background(), `SELECT count(*), coalesce(max(seq),0) FROM events`).Scan(&rows, &maxSeq); err != nil {
		t.Fatal(err)
	}
	if rows != maxSeq {
		t.Fatalf("events projection has %d rows for sequences up to %d", rows, maxSeq)
	}
}
