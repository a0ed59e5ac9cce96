package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/keel-cloud/keel/api"
)

// client calls the node's HTTP API the way a user would, through the one
// Go client of the API.
type client struct {
	api *api.Client
}

// adminPassword is the bootstrap admin's password of the nodes keelbench
// starts: every call it makes is authenticated, as a user's would be.
const adminPassword = "keelbench-admin-password"

// newClient logs in to the node at base as its admin.
func newClient(ctx context.Context, base string, conns int) (*client, error) {
	tr := &http.Transport{MaxIdleConns: 2 * conns, MaxIdleConnsPerHost: 2 * conns, IdleConnTimeout: time.Minute}
	c := api.New(base)
	c.HTTP = &http.Client{Transport: tr, Timeout: time.Minute}
	c.Header = http.Header{"User-Agent": {"keelbench"}}
	logged, _, err := api.Login(ctx, c, "admin", adminPassword, "")
	if err != nil {
		return nil, fmt.Errorf("log in to %s: %w", base, err)
	}
	return &client{api: logged}, nil
}

// seed creates a flavor and an active image; it returns their ids and the
// sequence of the last commit.
func (c *client) seed(ctx context.Context) (flavorID, imageID string, seq uint64, err error) {
	f, _, err := api.Create[api.Flavor](ctx, c.api, api.Flavors, api.FlavorBody{Name: "small", VCPUs: 1, RAMMiB: 512, DiskGiB: 1}, api.Opts{})
	if err != nil {
		return "", "", 0, fmt.Errorf("create flavor: %w", err)
	}
	im, _, err := api.Create[api.Image](ctx, c.api, api.Images, api.ImageBody{Name: "tiny", DiskFormat: "raw"}, api.Opts{})
	if err != nil {
		return "", "", 0, fmt.Errorf("create image: %w", err)
	}
	data := bytes.Repeat([]byte("keel"), 4096)
	res, err := c.api.Do(ctx, api.Request{Method: http.MethodPut, Path: api.Path(api.Images, im.ID, "file"),
		Raw: bytes.NewReader(data), RawType: "application/octet-stream", RawLength: int64(len(data))}, &im)
	if err != nil {
		return "", "", 0, fmt.Errorf("upload image: %w", err)
	}
	return f.ID, im.ID, res.Sequence, nil
}

// createServer posts one server create; it returns the answer and the
// commit's sequence.
func (c *client) createServer(ctx context.Context, name, flavorID, imageID string) (api.Accepted, uint64, error) {
	acc, res, err := api.Create[api.Accepted](ctx, c.api, api.Servers, api.ServerBody{Name: name, Flavor: flavorID, Image: imageID}, api.Opts{})
	if err != nil {
		return acc, 0, fmt.Errorf("create server %s: %w", name, err)
	}
	return acc, res.Sequence, nil
}
