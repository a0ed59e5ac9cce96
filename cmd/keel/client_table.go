package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// writeTable prints a header row and rows in aligned columns.
func writeTable(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	writeRow(tw, header)
	for _, r := range rows {
		writeRow(tw, r)
	}
	return tw.Flush()
}

// field is one line of a resource shown on its own.
type field struct{ name, value string }

// writeFields prints one resource as aligned "NAME  value" lines.
func writeFields(w io.Writer, fields []field) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range fields {
		writeRow(tw, []string{f.name, f.value})
	}
	return tw.Flush()
}

func writeRow(tw io.Writer, cells []string) {
	clean := make([]string, len(cells))
	for i, c := range cells {
		clean[i] = cell(c)
	}
	fmt.Fprintln(tw, strings.Join(clean, "\t"))
}

// cell keeps a value on one line and in one column, with other control and
// bidirectional characters escaped; empty shows as "-".
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return escapeText(strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s), false)
}

// deref reads an optional string.
func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func itoa(n int) string { return strconv.Itoa(n) }

// fmtTime shows a time in UTC with milliseconds; the zero time is empty.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// fmtTimePtr shows an optional time.
func fmtTimePtr(t *time.Time) string {
	if t == nil {
		return ""
	}
	return fmtTime(*t)
}

// fmtDuration rounds a duration to the millisecond (to the second above a minute).
func fmtDuration(d time.Duration) string {
	if d >= time.Minute {
		return d.Round(time.Second).String()
	}
	return d.Round(time.Millisecond).String()
}

// fmtMS shows an optional duration in milliseconds.
func fmtMS(ms *int64) string {
	if ms == nil {
		return ""
	}
	return fmtDuration(time.Duration(*ms) * time.Millisecond)
}

// fmtBytes shows a size in binary units.
func fmtBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// usage shows "used/total".
func usage(used, total int) string { return itoa(used) + "/" + itoa(total) }
