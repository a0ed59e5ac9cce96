package domain_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/keel-cloud/keel/domain"
)

func TestCheckName(t *testing.T) {
	cases := []struct {
		name string
		in   string
		msg  string // "" when the name is accepted
	}{
		{"plain", "web-1", ""},
		{"inner spaces", "my web server", ""},
		{"unicode", "serveur-été-日本", ""},
		{"255 bytes", strings.Repeat("a", 255), ""},
		{"empty", "", "name must not be empty"},
		{"256 bytes", strings.Repeat("a", 256), "name is 256 bytes long; the limit is 255"},
		{"256 bytes of 2-byte runes", strings.Repeat("é", 128), "256 bytes long"},
		{"invalid utf-8", "web\xff", "not valid UTF-8"},
		{"NUL", "web\x00", "control characters (found U+0000)"},
		{"newline", "web\n1", "control characters (found U+000A)"},
		{"tab", "\tweb", "control characters (found U+0009)"},
		{"DEL", "web\x7f", "control characters (found U+007F)"},
		{"C1 control", "web\u0085", "control characters (found U+0085)"},
		{"leading space", " web", "must not begin or end with white space"},
		{"trailing space", "web ", "must not begin or end with white space"},
		{"leading no-break space", "\u00a0web", "must not begin or end with white space"},
		{"only spaces", "   ", "must not begin or end with white space"},
		{"line separator", "web\u2028x", "control characters (found U+2028)"},
		{"escape sequence", "web\x1b[2J", "control characters (found U+001B)"},
		{"right-to-left override", "invoice\u202egpj.exe", "bidirectional control characters (found U+202E)"},
		{"left-to-right embedding", "\u202aweb", "bidirectional control characters (found U+202A)"},
		{"first strong isolate", "web\u2068x", "bidirectional control characters (found U+2068)"},
		{"pop directional isolate", "web\u2069", "bidirectional control characters (found U+2069)"},
		{"right-to-left mark", "web\u200f", "bidirectional control characters (found U+200F)"},
		{"left-to-right mark", "web\u200e", "bidirectional control characters (found U+200E)"},
		{"arabic letter mark", "web\u061c", "bidirectional control characters (found U+061C)"},
		{"replacement character", "web\ufffd", "must not contain U+FFFD"},
		{"hebrew without marks", "שרת-1", ""},
		{"zero width joiner", "👩\u200d💻", ""},
		{"uuid", "3f2504e0-4f89-11d3-9a0c-0305e82c3301", "must not be a UUID"},
		{"uuid in capitals", "3F2504E0-4F89-11D3-9A0C-0305E82C3301", "must not be a UUID"},
		{"uuid without dashes", "3f2504e04f8911d39a0c0305e82c3301", "must not be a UUID"},
		{"uuid in braces", "{3f2504e0-4f89-11d3-9a0c-0305e82c3301}", "must not be a UUID"},
		{"uuid urn", "urn:uuid:3f2504e0-4f89-11d3-9a0c-0305e82c3301", "must not be a UUID"},
		{"uuid with a suffix", "3f2504e0-4f89-11d3-9a0c-0305e82c3301-b", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := domain.CheckName("name", c.in)
			if c.msg == "" {
				if err != nil {
					t.Fatalf("CheckName(%q) = %v, want accepted", c.in, err)
				}
				return
			}
			if domain.KindOf(err) != domain.Invalid {
				t.Fatalf("CheckName(%q) = %v (kind %d), want Invalid", c.in, err, domain.KindOf(err))
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("CheckName(%q) = %q, want it to mention %q", c.in, err, c.msg)
			}
		})
	}
}

func TestCheckText(t *testing.T) {
	cases := []struct {
		name string
		in   string
		msg  string // "" when the text is accepted
	}{
		{"empty", "", ""},
		{"sentence", "disk swap, back at 14:00 (ticket #42)", ""},
		{"edge spaces", " rack 4 ", ""},
		{"uuid", "3f2504e0-4f89-11d3-9a0c-0305e82c3301", ""},
		{"at the limit", strings.Repeat("€", domain.MaxText/3), ""},
		{"over the limit", strings.Repeat("a", domain.MaxText+1), "1021 bytes long; the limit is 1020"},
		{"invalid utf-8", "a\xc3", "not valid UTF-8"},
		{"escape sequence", "\x1b]0;pwned\x07", "control characters (found U+001B)"},
		{"newline", "line\nforged", "control characters (found U+000A)"},
		{"carriage return", "ok\rforged", "control characters (found U+000D)"},
		{"C1 CSI", "a\u009b2J", "control characters (found U+009B)"},
		{"paragraph separator", "a\u2029b", "control characters (found U+2029)"},
		{"right-to-left override", "a\u202eb", "bidirectional control characters (found U+202E)"},
		{"left-to-right isolate", "a\u2066b", "bidirectional control characters (found U+2066)"},
		{"replacement character", "\ufffd", "must not contain U+FFFD"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := domain.CheckText("reason", c.in)
			if c.msg == "" {
				if err != nil {
					t.Fatalf("CheckText(%q) = %v, want accepted", c.in, err)
				}
				return
			}
			if domain.KindOf(err) != domain.Invalid || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("CheckText(%q) = %v, want an Invalid refusal mentioning %q", c.in, err, c.msg)
			}
			if !strings.HasPrefix(err.Error(), "reason ") {
				t.Fatalf("CheckText(%q) = %q, want it to name the field", c.in, err)
			}
		})
	}
}

func TestIsBidiControl(t *testing.T) {
	want := map[rune]bool{0x061c: true, 0x200e: true, 0x200f: true}
	for r := rune(0x202a); r <= 0x202e; r++ {
		want[r] = true
	}
	for r := rune(0x2066); r <= 0x2069; r++ {
		want[r] = true
	}
	for r := rune(0); r <= 0x3000; r++ {
		if got := domain.IsBidiControl(r); got != want[r] {
			t.Errorf("IsBidiControl(%U) = %v, want %v", r, got, want[r])
		}
	}
}

func TestCheckNameUsesField(t *testing.T) {
	err := domain.CheckName("host name", "")
	if err == nil || err.Error() != "host name must not be empty" {
		t.Fatalf("got %v", err)
	}
}

func TestErrorKinds(t *testing.T) {
	cases := []struct {
		err  error
		kind domain.ErrorKind
		msg  string
	}{
		{domain.Invalidf("bad %d", 1), domain.Invalid, "bad 1"},
		{domain.Conflictf("busy %s", "x"), domain.Conflict, "busy x"},
		{domain.NotFoundf("gone %q", "y"), domain.NotFound, `gone "y"`},
		{fmt.Errorf("wrapped: %w", domain.Conflictf("busy")), domain.Conflict, "wrapped: busy"},
		{errors.New("plain"), 0, "plain"},
	}
	for _, c := range cases {
		if got := domain.KindOf(c.err); got != c.kind {
			t.Errorf("KindOf(%v) = %d, want %d", c.err, got, c.kind)
		}
		if c.err.Error() != c.msg {
			t.Errorf("message %q, want %q", c.err.Error(), c.msg)
		}
	}
	if domain.KindOf(nil) != 0 {
		t.Error("KindOf(nil) should be 0")
	}
	// The kinds are distinct and non-zero, so 0 can mean "not a refusal".
	if domain.Invalid == 0 || domain.Invalid == domain.Conflict || domain.Conflict == domain.NotFound {
		t.Error("error kinds must be distinct and non-zero")
	}
}

// ping is a minimal event for exercising the registry and the decider.
type ping struct {
	N int `json:"n"`
}

func (*ping) EventType() string { return "test.ping" }

var registry = domain.Registry{"test.ping": func() domain.Event { return &ping{} }}

func TestRegistryDecode(t *testing.T) {
	raw, err := domain.Encode([]domain.Event{&ping{N: 1}, &ping{N: 2}})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range raw {
		if r.Type != "test.ping" || r.Schema != 1 {
			t.Errorf("raw[%d] = %+v, want type test.ping schema 1", i, r)
		}
	}
	evs, err := registry.DecodeAll(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].(*ping).N != 1 || evs[1].(*ping).N != 2 {
		t.Fatalf("decoded %+v", evs)
	}
}

func TestRegistryDecodeUnknownType(t *testing.T) {
	_, err := registry.Decode("test.pong", []byte(`{}`))
	if !errors.Is(err, domain.ErrUnknownEvent) || !strings.Contains(err.Error(), `"test.pong"`) {
		t.Fatalf("got %v, want ErrUnknownEvent naming the type", err)
	}
	_, err = registry.DecodeAll([]domain.RawEvent{{Type: "test.ping", Data: []byte(`{}`)}, {Type: "test.pong", Data: []byte(`{}`)}})
	if !errors.Is(err, domain.ErrUnknownEvent) {
		t.Fatalf("DecodeAll: got %v, want ErrUnknownEvent", err)
	}
}

func TestRegistryDecodeBadData(t *testing.T) {
	_, err := registry.Decode("test.ping", []byte(`{"n":"one"}`))
	if err == nil || errors.Is(err, domain.ErrUnknownEvent) {
		t.Fatalf("got %v, want a JSON error", err)
	}
}

func TestEncodeEmpty(t *testing.T) {
	raw, err := domain.Encode(nil)
	if err != nil || raw == nil || len(raw) != 0 {
		t.Fatalf("Encode(nil) = %#v, %v; want an empty, non-nil slice", raw, err)
	}
}

func TestDeciderFoldAppliesEventsInOrder(t *testing.T) {
	d := domain.Decider[[]int, struct{}]{
		Evolve: func(s []int, ev domain.Event) []int { return append(s, ev.(*ping).N) },
	}
	got := d.Fold(nil, []domain.Event{&ping{N: 3}, &ping{N: 1}, &ping{N: 2}})
	if fmt.Sprint(got) != "[3 1 2]" {
		t.Fatalf("Fold = %v", got)
	}
	if got := d.Fold([]int{7}, nil); fmt.Sprint(got) != "[7]" {
		t.Fatalf("Fold of no events = %v, want the state unchanged", got)
	}
}
