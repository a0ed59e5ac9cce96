package audit

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// The verifier's fast check of the columns holds for records as Keel
// encodes them, with and without the fields left out when empty.
func TestColumnsPrefixMatchesTheEncoding(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 120000, time.UTC)
	for _, rec := range []Record{
		{ID: "a1", At: at, Project: "p1", Operation: "create-server", Outcome: Success, Reason: "x"},
		{ID: "a2", At: at.Truncate(time.Second), Outcome: Failure, Status: 401},
		{ID: "a3", At: at, Project: `we"ird<&>`, Outcome: Failure},
	} {
		b, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		r := Row{ID: rec.ID, At: rec.At, Project: rec.Project, Operation: rec.Operation, Outcome: rec.Outcome, Record: b}
		if p := columnsPrefix(r); !bytes.HasPrefix(b, p) {
			t.Errorf("record %s\ndoes not start with %s", b, p)
		}
	}
}
