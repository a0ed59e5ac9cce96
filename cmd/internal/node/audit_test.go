package node_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/keel-cloud/keel/adapters/postgres"
	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/cmd/internal/node"
)

// withRequestID is c sending X-Request-Id id.
func withRequestID(c *api.Client, id string) *api.Client {
	cp := *c
	cp.Header = http.Header{"X-Request-Id": {id}}
	return &cp
}

// auditByRequest lists the trail as c sees it (q added), by request id.
func auditByRequest(t *testing.T, c *api.Client, q url.Values) map[string]api.AuditEvent {
	t.Helper()
	q.Set("limit", "10000")
	evs, err := api.AuditList(context.Background(), c, q)
	if err != nil {
		t.Fatalf("audit list: %v", err)
	}
	out := map[string]api.AuditEvent{}
	for _, ev := range evs {
		out[ev.RequestID] = ev
	}
	return out
}

// A member's accepted create, a reader's refused one, a made-up token and
// a wrong password each leave a record saying who, from where, what, on
// what and how it ended; no password or token appears in any record; each
// project admin sees their own project's records only.
func TestAuditRecordsCommandsAndRefusals(t *testing.T) {
	e := start(t, func(c *node.Config) { c.FakeHosts = 0 })
	ctx := context.Background()
	e.addProject("alpha")
	e.addProject("beta")
	member, reader := e.addUser("max", "alpha", "member"), e.addUser("rita", "alpha", "reader")
	admin, other := e.addUser("ada", "alpha", "admin"), e.addUser("bea", "beta", "admin")

	kp, _, err := api.Create[api.Keypair](ctx, withRequestID(member.c, "req-accepted"), api.Keypairs, api.KeypairBody{Name: "k1", PublicKey: ed25519Key}, api.Opts{})
	if err != nil {
		t.Fatal(err)
	}
	_, res, err := api.Create[api.Keypair](ctx, withRequestID(reader.c, "req-refused"), api.Keypairs, api.KeypairBody{Name: "k2", PublicKey: ed25519Key}, api.Opts{})
	if got := status(res, err); got != 403 {
		t.Fatalf("reader's create: %d, want 403", got)
	}
	_, res, err = api.Get[api.List[api.Server]](ctx, withRequestID(api.New(e.node.URL).WithToken("made-up-token-secret"), "req-badtoken"), api.Servers, api.Opts{})
	if got := status(res, err); got != 401 {
		t.Fatalf("made-up token: %d, want 401", got)
	}
	if _, _, err := api.Login(ctx, withRequestID(api.New(e.node.URL), "req-badlogin"), "max", "wrong-password-secret", ""); !api.IsStatus(err, 401) {
		t.Fatalf("wrong password: %v, want 401", err)
	}

	all := auditByRequest(t, e.api, url.Values{"all_projects": {"true"}})
	check := func(reqID, name, project, op, target, targetID, outcome, code string) {
		t.Helper()
		ev, ok := all[reqID]
		switch {
		case !ok:
			t.Fatalf("no record of %s", reqID)
		case ev.Initiator.Name != name || ev.Initiator.ProjectID != project || ev.Operation != op || ev.Outcome != outcome ||
			ev.Reason.ReasonCode != code || ev.Target.TypeURI != target || ev.Target.ID != targetID:
			t.Fatalf("%s: %+v\nwant actor %s, project %q, operation %s, target %s %s, outcome %s, status %s", reqID, ev, name, project, op, target, targetID, outcome, code)
		case ev.Initiator.Host.Address != "127.0.0.1" || ev.TypeURI != api.AuditTypeURI || ev.Observer.ID != "keel" || ev.EventType != "activity" || ev.Seq == 0:
			t.Fatalf("%s: %+v: source, typeURI, observer, eventType or seq wrong", reqID, ev)
		}
	}
	check("req-accepted", "max", member.project, "create-keypair", "keel/keypairs", kp.ID, "success", "201")
	check("req-refused", "rita", reader.project, "create-keypair", "keel/keypairs", "", "failure", "403")
	check("req-badtoken", "", "", "list-servers", "keel/servers", "", "failure", "401")
	check("req-badlogin", "max", "", "create-token", "keel/tokens", "", "failure", "401")
	if ev := all["req-accepted"]; ev.Initiator.ID == "" || ev.Initiator.TokenID == "" || ev.Action != "create" {
		t.Fatalf("accepted create: %+v: want the user id, the token id and action create", ev)
	}
	if ev := all["req-refused"]; !strings.Contains(ev.Reason.Message, "member") {
		t.Fatalf("refusal's reason %q does not say what was missing", ev.Reason.Message)
	}
	if ev := all["req-badlogin"]; ev.Action != "authenticate" || ev.Initiator.ID != "" {
		t.Fatalf("bad login: %+v", ev)
	}

	// No secret in any record: passwords of the logins and user creates,
	// the wrong one, tokens issued, the made-up one.
	raw := e.must(200, e.call("GET", "/v1/audit?all_projects=true&limit=10000", nil))
	if ct := raw.Header.Get("Content-Type"); ct != "application/jsonl" {
		t.Fatalf("Content-Type %q", ct)
	}
	for _, secret := range []string{adminPassword, "max-password-long-enough", "rita-password-long-enough", "wrong-password-secret",
		"made-up-token-secret", e.token, member.c.Token, reader.c.Token, admin.c.Token} {
		if strings.Contains(string(raw.Body), secret) {
			t.Fatalf("a record holds the secret %q", secret)
		}
	}

	// Scope: alpha's admin sees alpha's records, not the refused token and
	// login (no project); beta's admin sees none of them.
	own := auditByRequest(t, admin.c, url.Values{})
	if _, ok := own["req-accepted"]; !ok {
		t.Fatal("alpha's admin does not see alpha's accepted create")
	}
	if _, ok := own["req-refused"]; !ok {
		t.Fatal("alpha's admin does not see alpha's refused create")
	}
	for _, id := range []string{"req-badtoken", "req-badlogin"} {
		if _, ok := own[id]; ok {
			t.Fatalf("alpha's admin sees %s", id)
		}
	}
	for id := range auditByRequest(t, other.c, url.Values{}) {
		if strings.HasPrefix(id, "req-") {
			t.Fatalf("beta's admin sees %s", id)
		}
	}
	if _, err := api.AuditList(ctx, other.c, url.Values{"project": {member.project}}); !api.IsStatus(err, 403) {
		t.Fatalf("beta's admin asking for alpha's records: %v, want 403", err)
	}
	if _, err := api.AuditList(ctx, member.c, url.Values{}); !api.IsStatus(err, 403) {
		t.Fatalf("a member reading the trail: %v, want 403", err)
	}
	if v := verify(t, e); !v.OK {
		t.Fatalf("untouched chain: %+v", v.First)
	}
}

func verify(t *testing.T, e *env) api.AuditVerification {
	t.Helper()
	v, err := api.AuditVerify(context.Background(), e.api)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return v
}

// auditRow is a whole row of audit_records, to put back after tampering.
type auditRow struct {
	seq                          int64
	id, project, operation, outc string
	at                           any
	record, prevHash, hash       []byte
}

func readRow(t *testing.T, db *pgx.Conn, seq uint64) auditRow {
	t.Helper()
	var r auditRow
	if err := db.QueryRow(context.Background(), `SELECT seq, id::text, at, project_id, operation, outcome, record, prev_hash, hash FROM audit_records WHERE seq=$1`, int64(seq)).
		Scan(&r.seq, &r.id, &r.at, &r.project, &r.operation, &r.outc, &r.record, &r.prevHash, &r.hash); err != nil {
		t.Fatal(err)
	}
	return r
}

func sqlExec(t *testing.T, db *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := db.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// Changing, deleting or reordering one row of audit_records makes verify
// fail naming that row; put back, the chain verifies again.
func TestAuditVerifyNamesTheTamperedRecord(t *testing.T) {
	e := start(t, func(c *node.Config) { c.FakeHosts = 0 })
	ctx := context.Background()
	for _, name := range []string{"k1", "k2", "k3"} {
		if _, _, err := api.Create[api.Keypair](ctx, e.api, api.Keypairs, api.KeypairBody{Name: name, PublicKey: ed25519Key}, api.Opts{}); err != nil {
			t.Fatal(err)
		}
	}
	if v := verify(t, e); !v.OK || v.Records < 4 {
		t.Fatalf("untouched chain: %+v", v)
	}
	db, err := pgx.Connect(ctx, e.cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	const a, b = 2, 3 // middle rows: the login is 1, verify's own records follow
	ra, rb := readRow(t, db, a), readRow(t, db, b)
	restore := func(r auditRow) {
		sqlExec(t, db, `DELETE FROM audit_records WHERE seq=$1`, r.seq)
		sqlExec(t, db, `INSERT INTO audit_records (seq, id, at, project_id, operation, outcome, record, prev_hash, hash) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)`,
			r.seq, r.id, r.at, r.project, r.operation, r.outc, r.record, r.prevHash, r.hash)
	}
	expect := func(name string, seq uint64, kind, id string) {
		t.Helper()
		v := verify(t, e)
		if v.OK || v.First == nil || v.First.Seq != seq || v.First.Kind != kind || v.First.ID != id {
			t.Fatalf("%s: verify gave %+v (first %+v), want seq %d %s", name, v, v.First, seq, kind)
		}
	}

	sqlExec(t, db, `UPDATE audit_records SET record = $2 WHERE seq=$1`, a, []byte(strings.Replace(string(ra.record), `"status":201`, `"status":200`, 1)))
	expect("a changed record", a, "changed", ra.id)
	restore(ra)

	sqlExec(t, db, `DELETE FROM audit_records WHERE seq=$1`, b)
	expect("a removed record", b, "missing", "")
	restore(rb)

	sqlExec(t, db, `UPDATE audit_records SET record = CASE seq WHEN $1 THEN $4::bytea ELSE $3::bytea END WHERE seq IN ($1, $2)`, a, b, ra.record, rb.record)
	expect("two records swapped", a, "reordered", ra.id)
	restore(ra)
	restore(rb)

	if v := verify(t, e); !v.OK {
		t.Fatalf("restored chain: %+v", v.First)
	}
}

// Chain writers racing on one database (replicas of keel serve) copy every
// record once, in stream order.
func TestAuditChainWritersRace(t *testing.T) {
	e := start(t, func(c *node.Config) { c.FakeHosts = 0 })
	ctx := context.Background()
	chain := &postgres.AuditChain{Pool: e.node.Pool, Source: e.node.Audit, Log: e.cfg.Log}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 { // two more writers besides the node's own
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := chain.CopyOnce(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var pub sync.WaitGroup
	for i := range 8 {
		pub.Add(1)
		go func() {
			defer pub.Done()
			for j := range 25 {
				e.call("POST", "/v1/keypairs", map[string]any{"name": "k" + string(rune('a'+i)) + string(rune('a'+j)), "public_key": ed25519Key})
			}
		}()
	}
	pub.Wait()
	close(stop)
	wg.Wait()
	v := verify(t, e)
	if !v.OK || v.Records < 201 || v.Last != v.Records {
		t.Fatalf("after racing writers: %+v (first %+v)", v, v.First)
	}
}
