package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// client calls the node's HTTP API the way a user would.
type client struct {
	base string
	http *http.Client
}

func newClient(base string, conns int) *client {
	tr := &http.Transport{MaxIdleConns: 2 * conns, MaxIdleConnsPerHost: 2 * conns, IdleConnTimeout: time.Minute}
	return &client{base: base, http: &http.Client{Transport: tr, Timeout: time.Minute}}
}

// call sends body (JSON-encoded unless it is []byte) and, when out is not
// nil, decodes the answer into it. It fails unless the status is want. It
// returns the Keel-Sequence of the answer.
func (c *client) call(ctx context.Context, method, path string, body any, want int, out any) (uint64, error) {
	var raw []byte
	ctype := "application/json"
	switch b := body.(type) {
	case nil:
	case []byte:
		raw, ctype = b, "application/octet-stream"
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			return 0, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(raw))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", ctype)
	res, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, err
	}
	if res.StatusCode != want {
		return 0, fmt.Errorf("%s %s: status %d, want %d: %s", method, path, res.StatusCode, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return 0, fmt.Errorf("%s %s: decode %s: %w", method, path, data, err)
		}
	}
	seq, _ := strconv.ParseUint(res.Header.Get("Keel-Sequence"), 10, 64)
	return seq, nil
}

// seed creates a flavor and an active image; it returns their ids and the
// sequence of the last commit.
func (c *client) seed(ctx context.Context) (flavorID, imageID string, seq uint64, err error) {
	var f, im struct {
		ID string `json:"id"`
	}
	if _, err = c.call(ctx, "POST", "/v1/flavors", map[string]any{"name": "small", "vcpus": 1, "ram_mib": 512, "disk_gib": 1}, 201, &f); err != nil {
		return
	}
	if _, err = c.call(ctx, "POST", "/v1/images", map[string]any{"name": "tiny", "disk_format": "raw"}, 201, &im); err != nil {
		return
	}
	seq, err = c.call(ctx, "PUT", "/v1/images/"+im.ID+"/file", bytes.Repeat([]byte("keel"), 4096), 200, nil)
	return f.ID, im.ID, seq, err
}

// createServer posts one server create; it returns the commit's sequence.
func (c *client) createServer(ctx context.Context, name, flavorID, imageID string) (uint64, error) {
	return c.call(ctx, "POST", "/v1/servers", map[string]string{"name": name, "flavor": flavorID, "image": imageID}, 202, nil)
}
