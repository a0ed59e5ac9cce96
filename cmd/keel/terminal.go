package main

import (
	"fmt"
	"io"
	"unicode"
	"unicode/utf8"

	"github.com/keel-cloud/keel/domain"
)

// What the CLI prints comes from the API, and the API's text may come from
// anyone: a name stored before the API refused control characters, a reason
// written by an older version, a problem detail quoting a request. Printed
// raw, an escape sequence could clear the screen or forge output, and a
// bidirectional override could make a line read differently from what it
// holds. So every byte the client commands print goes through
// terminalWriter, and table cells through cell.

// escapeText shows control characters, bidirectional controls, line and
// paragraph separators as \uXXXX and bytes that are not UTF-8 as \xNN.
// \uXXXX is also a JSON escape, so -o json output stays valid JSON (encoding/json
// escapes control characters but not U+202E). keepLayout keeps tabs and
// newlines, which the CLI writes itself.
func escapeText(s string, keepLayout bool) string {
	return string(appendEscaped(nil, []byte(s), keepLayout))
}

func appendEscaped(dst, p []byte, keepLayout bool) []byte {
	for len(p) > 0 {
		r, n := utf8.DecodeRune(p)
		switch {
		case r == utf8.RuneError && n <= 1:
			dst = fmt.Appendf(dst, `\x%02x`, p[0])
		case keepLayout && (r == '\n' || r == '\t'):
			dst = append(dst, p[0])
		case unsafeRune(r):
			dst = fmt.Appendf(dst, `\u%04x`, r)
		default:
			dst = append(dst, p[:n]...)
		}
		p = p[n:]
	}
	return dst
}

// unsafeRune reports whether r must not reach a terminal as it is.
func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || domain.IsBidiControl(r) || r == '\u2028' || r == '\u2029'
}

// terminalWriter escapes what is written to w (see escapeText), keeping
// tabs and newlines. A rune split across two writes is held back until the
// second one completes it.
type terminalWriter struct {
	w     io.Writer
	carry []byte
}

func newTerminalWriter(w io.Writer) *terminalWriter { return &terminalWriter{w: w} }

func (t *terminalWriter) Write(p []byte) (int, error) {
	buf := append(t.carry, p...)
	cut := incompleteTail(buf)
	t.carry = append([]byte(nil), buf[cut:]...)
	if _, err := t.w.Write(appendEscaped(nil, buf[:cut], true)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// incompleteTail returns where a rune that b ends in the middle of begins,
// or len(b).
func incompleteTail(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax+1; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return i
			}
			break
		}
	}
	return len(b)
}
