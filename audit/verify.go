package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Kinds of problems the verifier names.
const (
	// Changed: the record's bytes (or the row's hash, or a column copied
	// from the record) are not what was chained.
	Changed = "changed"
	// Missing: a sequence is absent, or a record's link to its
	// predecessor does not hold (one was removed or replaced).
	Missing = "missing"
	// Reordered: a record sits at another sequence than the one it was
	// chained at.
	Reordered = "reordered"
)

// Row is one row of the chain as kept in the database: the columns copied
// from the record, the record's bytes, and the chain hashes.
type Row struct {
	Seq       uint64
	ID        string
	At        time.Time
	Project   string
	Operation string
	Outcome   string
	Record    []byte
	PrevHash  []byte
	Hash      []byte
}

// Problem is one break of the chain.
type Problem struct {
	Seq    uint64 `json:"seq"`
	ID     string `json:"id,omitempty"`
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
}

func (p Problem) String() string {
	s := fmt.Sprintf("seq %d", p.Seq)
	if p.ID != "" {
		s += " (record " + p.ID + ")"
	}
	return s + " " + p.Kind + ": " + p.Detail
}

// Result is what a verification found.
type Result struct {
	Records uint64 // rows checked
	Last    uint64 // the last sequence seen
	// First is the first problem in sequence order (nil: none);
	// Problems counts them all.
	First    *Problem
	Problems int
}

// OK reports whether the chain held.
func (r Result) OK() bool { return r.First == nil }

// maxSuspects bounds the rows kept for the reordering check.
const maxSuspects = 1024

// Verifier walks a chain row by row, in sequence order from sequence 1.
// Its zero value is ready.
type Verifier struct {
	res      Result
	prevHash []byte
	first    *Problem
	firstRow Row
	suspects []Row // rows whose hash did not recompute
}

// Add checks the next row.
func (v *Verifier) Add(r Row) {
	v.res.Records++
	want := v.res.Last + 1
	switch {
	case r.Seq != want:
		detail := fmt.Sprintf("sequence %d is absent (the next row is %d)", want, r.Seq)
		if r.Seq > want+1 {
			detail = fmt.Sprintf("sequences %d to %d are absent", want, r.Seq-1)
		}
		v.problem(Problem{Seq: want, Kind: Missing, Detail: detail}, Row{})
	case !bytes.Equal(Hash(r.PrevHash, r.Record, r.Seq), r.Hash):
		if len(v.suspects) < maxSuspects {
			v.suspects = append(v.suspects, r)
		}
		v.problem(Problem{Seq: r.Seq, ID: r.ID, Kind: Changed, Detail: "the record does not hash to the row's hash"}, r)
	case !bytes.Equal(r.PrevHash, v.prevHash):
		v.problem(Problem{Seq: r.Seq, ID: r.ID, Kind: Missing, Detail: fmt.Sprintf("its link does not match the hash of sequence %d: a record before it was removed or replaced", r.Seq-1)}, Row{})
	default:
		if msg := columnsDiffer(r); msg != "" {
			v.problem(Problem{Seq: r.Seq, ID: r.ID, Kind: Changed, Detail: msg}, Row{})
		}
	}
	v.prevHash, v.res.Last = r.Hash, r.Seq
}

func (v *Verifier) problem(p Problem, r Row) {
	v.res.Problems++
	if v.first == nil {
		v.first, v.firstRow = &p, r
	}
}

// Result says what the rows added so far showed. A first problem of kind
// Changed whose record belongs at another suspect's sequence is Reordered.
func (v *Verifier) Result() Result {
	res := v.res
	if v.first == nil {
		return res
	}
	p := *v.first
	if p.Kind == Changed && v.firstRow.Seq != 0 {
		if at, ok := v.belongsAt(v.firstRow); ok {
			p.Kind, p.Detail = Reordered, fmt.Sprintf("the record was chained at sequence %d, not here", at)
		}
	}
	res.First = &p
	return res
}

// belongsAt finds the sequence a suspect row's record was chained at:
// another suspect's slot whose hash it makes (its record moved there), or
// its own hash under another sequence (the whole row moved).
func (v *Verifier) belongsAt(r Row) (uint64, bool) {
	for _, o := range v.suspects {
		if o.Seq == r.Seq {
			continue
		}
		if bytes.Equal(Hash(o.PrevHash, r.Record, o.Seq), o.Hash) || bytes.Equal(Hash(r.PrevHash, r.Record, o.Seq), r.Hash) {
			return o.Seq, true
		}
	}
	return 0, false
}

// indexed are the fields of a record the table keeps as columns.
type indexed struct {
	ID        string    `json:"id"`
	At        time.Time `json:"at"`
	Project   string    `json:"project_id"`
	Operation string    `json:"operation"`
	Outcome   string    `json:"outcome"`
}

// Columns reads the fields of a record the table keeps in columns.
func Columns(record []byte) (id string, at time.Time, project, operation, outcome string, err error) {
	var x indexed
	if err := json.Unmarshal(record, &x); err != nil {
		return "", time.Time{}, "", "", "", fmt.Errorf("decode audit record: %w", err)
	}
	return x.ID, x.At, x.Project, x.Operation, x.Outcome, nil
}

// columnsDiffer says which column of a row no longer matches its record
// ("" when all do): the columns serve lists and filters, so changing one
// would hide a record from its project or show it to another. A record as
// Keel encodes it starts with those fields (see Record), so the check is a
// prefix comparison; only a row that fails it is decoded to say which.
func columnsDiffer(r Row) string {
	if bytes.HasPrefix(r.Record, columnsPrefix(r)) {
		return ""
	}
	id, at, project, op, outcome, err := Columns(r.Record)
	switch {
	case err != nil:
		return "the record is not valid JSON"
	case id != r.ID:
		return "column id is " + r.ID + ", the record says " + id
	case !at.Equal(r.At):
		return "column at is " + r.At.Format(time.RFC3339Nano) + ", the record says " + at.Format(time.RFC3339Nano)
	case project != r.Project:
		return "column project_id is " + r.Project + ", the record says " + project
	case op != r.Operation:
		return "column operation is " + r.Operation + ", the record says " + op
	case outcome != r.Outcome:
		return "column outcome is " + r.Outcome + ", the record says " + outcome
	}
	return ""
}

// columnsPrefix is how a record whose fields are the row's columns begins.
func columnsPrefix(r Row) []byte {
	b := make([]byte, 0, 160)
	b = append(b, `{"id":`...)
	b = appendString(b, r.ID)
	b = append(b, `,"at":"`...)
	b = r.At.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if r.Project != "" {
		b = append(b, `,"project_id":`...)
		b = appendString(b, r.Project)
	}
	if r.Operation != "" {
		b = append(b, `,"operation":`...)
		b = appendString(b, r.Operation)
	}
	b = append(b, `,"outcome":`...)
	b = appendString(b, r.Outcome)
	return append(b, ',')
}

// appendString appends s as a JSON string, as encoding/json writes it.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
