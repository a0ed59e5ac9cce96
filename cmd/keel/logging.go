package main

import (
	"fmt"
	"io"
	"log/slog"
)

// newLogger returns the logger of keel serve and keel agent: format is
// "text" (key=value, for people) or "json" (one object a line, for log
// collectors), at info or, when verbose, at debug.
func newLogger(w io.Writer, format string, verbose bool) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if verbose {
		opts.Level = slog.LevelDebug
	}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format must be text or json, not %q", format)
}

// logFormatFlag is the help of --log-format.
const logFormatFlag = "log format: text or json (one JSON object a line)"
