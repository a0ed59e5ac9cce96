package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"syscall"

	"github.com/spf13/cobra"
)

// defaultAPI is where the API listens when neither --api nor KEEL_API says.
const defaultAPI = "http://127.0.0.1:8080"

// globals are the root's persistent flags and what the client commands share.
type globals struct {
	api    string
	output string
	client *apiClient
	out    io.Writer // results
	errOut io.Writer // progress and hints
}

// addClientCommands adds the commands that talk to the API.
func addClientCommands(root *cobra.Command) {
	g := &globals{}
	api := os.Getenv("KEEL_API")
	if api == "" {
		api = defaultAPI
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.api, "api", api, "Keel API base URL (env KEEL_API)")
	pf.StringVarP(&g.output, "output", "o", "table", "output format: table or json")
	root.AddCommand(flavorCmd(g), imageCmd(g), serverCmd(g), operationCmd(g),
		eventsCmd(g), replayCmd(g), projectionsCmd(g), hostCmd(g))
}

// group returns a parent command whose subcommands talk to the API.
func (g *globals) group(use, short string, aliases ...string) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Aliases: aliases, PersistentPreRunE: g.prepare}
}

// prepare checks the global flags and builds the client.
func (g *globals) prepare(cmd *cobra.Command, _ []string) error {
	if g.output != "table" && g.output != "json" {
		return fmt.Errorf("--output must be table or json, not %q", g.output)
	}
	base, err := normalizeAPI(g.api)
	if err != nil {
		return err
	}
	g.client = newAPIClient(base)
	g.out, g.errOut = cmd.OutOrStdout(), cmd.ErrOrStderr()
	return nil
}

func (g *globals) json() bool { return g.output == "json" }

// emit prints an API answer: indented as it came with -o json, else with table.
func (g *globals) emit(raw []byte, table func(w io.Writer) error) error {
	if g.json() {
		return writeIndented(g.out, raw)
	}
	return table(g.out)
}

// writeIndented prints JSON indented, ending with a newline.
func writeIndented(w io.Writer, raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(raw), "", "  "); err != nil {
		return fmt.Errorf("the API answered invalid JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// listPage is one page of a cursor-paginated list.
type listPage struct {
	Items      []json.RawMessage `json:"items"`
	NextCursor string            `json:"next_cursor"`
}

// listAll follows next_cursor to the end. It returns the items and the
// whole list in the API's shape (one page with every item).
func (g *globals) listAll(ctx context.Context, path string, q url.Values) ([]json.RawMessage, []byte, error) {
	if q == nil {
		q = url.Values{}
	}
	q.Set("limit", "500")
	all := listPage{Items: []json.RawMessage{}}
	for {
		var page listPage
		if _, err := g.client.get(ctx, path, q, 0, &page); err != nil {
			return nil, nil, err
		}
		all.Items = append(all.Items, page.Items...)
		if page.NextCursor == "" {
			raw, err := json.Marshal(all)
			return all.Items, raw, err
		}
		q.Set("cursor", page.NextCursor)
	}
}

// decodeItems decodes raw list items.
func decodeItems[T any](raws []json.RawMessage) ([]T, error) {
	out := make([]T, 0, len(raws))
	for _, r := range raws {
		var v T
		if err := json.Unmarshal(r, &v); err != nil {
			return nil, fmt.Errorf("the API answered an unexpected item: %w", err)
		}
		out = append(out, v)
	}
	return out, nil
}

// query builds query parameters from name/value pairs, leaving out empty values.
func query(kv ...string) url.Values {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	return q
}

// idemFlag adds --idempotency-key to a mutating command.
func idemFlag(cmd *cobra.Command, key *string) {
	cmd.Flags().StringVar(key, "idempotency-key", "", "Idempotency-Key header: retrying with the same key and arguments does the work once")
}

// interruptible returns a context that Ctrl-C (or SIGTERM) cancels.
func interruptible(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func isUUID(s string) bool { return uuidPattern.MatchString(s) }

// seg escapes one path segment.
func seg(s string) string { return url.PathEscape(s) }
