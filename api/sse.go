package api

import (
	"bufio"
	"bytes"
	"io"
	"strings"
)

// ReadSSE reads a server-sent event stream and calls fn with each event's
// name ("message" when unnamed) and data.
func ReadSSE(r io.Reader, fn func(event string, data []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	event, data, has := "", &bytes.Buffer{}, false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if has {
				if event == "" {
					event = "message"
				}
				if err := fn(event, data.Bytes()); err != nil {
					return err
				}
			}
			event, has = "", false
			data.Reset()
			continue
		}
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "event":
			event = value
		case "data":
			if has {
				data.WriteByte('\n')
			}
			data.WriteString(value)
			has = true
		}
	}
	return sc.Err()
}
