package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Problem is an RFC 9457 problem the API answered with; it is the error
// Client returns for any answer of status 400 or more.
type Problem struct {
	Type     string          `json:"type,omitempty"`
	Title    string          `json:"title"`
	Status   int             `json:"status"`
	Detail   string          `json:"detail,omitempty"`
	Instance string          `json:"instance,omitempty"`
	Errors   []ProblemDetail `json:"errors,omitempty"`
	// RequestID names the request, to quote when reporting a problem
	// (from X-Request-Id, else from the instance).
	RequestID string `json:"-"`
	// RetryAfter is the Retry-After header of a 503 or 429, as sent.
	RetryAfter string `json:"-"`
}

// ProblemDetail is one entry of a problem's errors: what was wrong, where.
type ProblemDetail struct {
	Message  string `json:"message"`
	Location string `json:"location,omitempty"`
	Value    any    `json:"value,omitempty"`
}

// instancePrefix is how the API names the request a problem answers.
const instancePrefix = "urn:keel:request:"

// Error reads "<status> <title>: <detail>", then one line per error. The
// text is as the API sent it: a program that shows it on a terminal
// escapes it first.
func (p *Problem) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", p.Status, p.Title)
	if p.Detail != "" {
		b.WriteString(": " + p.Detail)
	}
	for _, e := range p.Errors {
		b.WriteString("\n  - ")
		if e.Location != "" {
			b.WriteString(e.Location + ": ")
		}
		b.WriteString(e.Message)
	}
	return b.String()
}

// DecodeProblem reads an error answer. A body that is not a problem (a
// proxy's HTML page, a plain-text 404) still gives a readable one, with
// the first line of the body as its detail.
func DecodeProblem(status int, h http.Header, raw []byte) *Problem {
	p := &Problem{}
	if err := json.Unmarshal(raw, p); err != nil || (p.Title == "" && p.Detail == "") {
		p = &Problem{Detail: firstLine(string(raw), 200)}
	}
	if p.Status == 0 {
		p.Status = status
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	p.RequestID = h.Get("X-Request-Id")
	if p.RequestID == "" {
		p.RequestID = strings.TrimPrefix(p.Instance, instancePrefix)
	}
	p.RetryAfter = h.Get("Retry-After")
	return p
}

func firstLine(s string, n int) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}

// IsStatus reports whether err is a problem with one of the statuses.
func IsStatus(err error, statuses ...int) bool {
	var p *Problem
	if !errors.As(err, &p) {
		return false
	}
	for _, s := range statuses {
		if p.Status == s {
			return true
		}
	}
	return false
}
