package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/keel-cloud/keel/api"
)

// defaultAPI is where the API listens when neither --api nor KEEL_API says.
const defaultAPI = "http://127.0.0.1:8080"

// globals are the root's persistent flags and what the client commands share.
type globals struct {
	api    string
	token  string // --token
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
	pf.StringVar(&g.api, "api", api, "Keel API base URL (env KEEL_API; without either, the API of the saved keel login)")
	pf.StringVar(&g.token, "token", "", "bearer token to send (env KEEL_TOKEN; default: the saved keel login's; a flag shows in ps, prefer the env)")
	pf.StringVarP(&g.output, "output", "o", "table", "output format: table or json")
	root.AddCommand(loginCmd(g), logoutCmd(g), whoamiCmd(g), projectCmd(g), quotaCmd(g), userCmd(g), tokenCmd(g),
		flavorCmd(g), imageCmd(g), keypairCmd(g), serverCmd(g), operationCmd(g),
		eventsCmd(g), replayCmd(g), projectionsCmd(g), hostCmd(g), serverGroupCmd(g), aggregateCmd(g), azCmd(g), parkedCmd(g), usageCmd(g), auditCmd(g),
		networkCmd(g), subnetCmd(g), portCmd(g), securityGroupCmd(g), routerCmd(g), floatingIPCmd(g))
}

// group returns a parent command whose subcommands talk to the API.
func (g *globals) group(use, short string, aliases ...string) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Aliases: aliases, PersistentPreRunE: g.prepare}
}

// prepare checks the global flags and builds the client, with the API
// and token resolveAuth picks.
func (g *globals) prepare(cmd *cobra.Command, _ []string) error {
	if err := g.prepareOutput(cmd); err != nil {
		return err
	}
	a, err := g.resolveAuth(cmd)
	if err != nil {
		return err
	}
	g.client = newAPIClient(a.base)
	g.client.c.Token = a.token
	g.client.auth = a
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

// listAll follows next_cursor to the end. It returns the items as the API
// sent them and the whole list in the API's shape (one page with every
// item).
func (g *globals) listAll(ctx context.Context, path string, q url.Values) ([]json.RawMessage, []byte, error) {
	items, err := api.ListAll[json.RawMessage](ctx, g.client.c, path, api.Opts{Query: q})
	if err != nil {
		return nil, nil, g.client.explain(err)
	}
	raw, err := json.Marshal(api.List[json.RawMessage]{Items: items})
	return items, raw, err
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

// deleteResource sends a DELETE answered with 204, waits for the read
// model to apply it, and says so.
func (g *globals) deleteResource(ctx context.Context, kind, path, ref, key string) error {
	rep, err := g.client.doJSON(ctx, call{method: http.MethodDelete, path: path, idemKey: key}, nil)
	if err != nil {
		return err
	}
	if _, err := g.settle(ctx, path, rep.seq, nil); err != nil && !isStatus(err, http.StatusNotFound) {
		g.settleNote(err)
	}
	if !g.json() {
		fmt.Fprintf(g.out, "%s %s deleted\n", kind, ref)
	}
	return nil
}

// settle reads path with Keel-Min-Sequence set to the sequence of a write
// the API answered before its read model applied it (a 204, a 201 built
// from the command's result). Every projection has then applied the write,
// so the next command, this one's or a script's, reads it: by name too.
// out, when not nil, gets the resource as read.
func (g *globals) settle(ctx context.Context, path string, seq uint64, out any) (reply, error) {
	if seq == 0 {
		return reply{}, errors.New("the API answered no Keel-Sequence")
	}
	return g.client.get(ctx, path, nil, seq, out)
}

// settleNote says that a write succeeded but reading it back did not.
func (g *globals) settleNote(err error) {
	fmt.Fprintf(g.errOut, "note: done, but reading it back failed (%v); reads may show the old state for a moment\n", firstLine(err.Error(), 200))
}

// kvMode says what parseKV accepts.
type kvMode int

const (
	kvNeedValue  kvMode = iota // KEY=VALUE, the value not empty
	kvEmptyValue               // KEY=VALUE or KEY= (an empty value: remove the key)
)

// parseKV parses KEY=VALUE arguments (split at the first "="). what names
// them in errors, e.g. "--metadata". A key given twice is an error: which
// one was meant is a guess.
func parseKV(what string, args []string, mode kvMode) (map[string]string, error) {
	out := make(map[string]string, len(args))
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		switch {
		case !ok:
			return nil, fmt.Errorf("%s %q: want KEY=VALUE", what, a)
		case k == "":
			return nil, fmt.Errorf("%s %q: the key is empty", what, a)
		case v == "" && mode == kvNeedValue:
			return nil, fmt.Errorf("%s %q: the value is empty", what, a)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("%s: key %q is given twice", what, k)
		}
		out[k] = v
	}
	return out, nil
}

// fmtKV shows a map as "k1=v1,k2=v2", sorted by key, leaving out the
// keys in skip.
func fmtKV(m map[string]string, skip ...string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		if !slices.Contains(skip, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}
