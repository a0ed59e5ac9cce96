package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestLogFormat(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLogger(&buf, "json", false)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("request", "status", 404)
	log.Debug("hidden")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil || line["msg"] != "request" || line["status"] != float64(404) {
		t.Errorf("json log: %q (%v)", buf.String(), err)
	}
	buf.Reset()
	if log, err = newLogger(&buf, "text", true); err != nil {
		t.Fatal(err)
	}
	log.Debug("shown", "k", "v")
	if !strings.Contains(buf.String(), "level=DEBUG msg=shown k=v") {
		t.Errorf("text log: %q", buf.String())
	}
	if _, err := newLogger(&buf, "xml", false); err == nil {
		t.Error("--log-format xml was accepted")
	}
}
