package httpapi

import (
	"net/http"
	"reflect"
	"strings"

	"github.com/danielgtaylor/huma/v2"
)

func init() {
	// Lists are never null: the document says so, and noNullArrays makes
	// it true of every body the handlers return.
	huma.DefaultArrayNullable = false
}

// tags describes the groups of operations, in the order docs show them.
var tags = []*huma.Tag{
	{Name: "servers", Description: "Virtual machines: create, start, stop, reboot and delete. Anything that takes time answers 202 with an operation."},
	{Name: "operations", Description: "The multi-step operations (sagas) behind server requests: steps, deadlines, outcome and error."},
	{Name: "flavors", Description: "Server sizes: vCPUs, RAM, root disk, and placement extra specs."},
	{Name: "keypairs", Description: "SSH public keys users bring; a server created with key_name gets a copy for its admin user."},
	{Name: "images", Description: "Disk images: their metadata, and their bytes kept in the JetStream object store."},
	{Name: "hosts", Description: "Compute hosts: capacity, liveness, enable and disable, maintenance, overcommit ratios."},
	{Name: "aggregates", Description: "Host aggregates (metadata the scheduler matches) and the availability zones they name."},
	{Name: "server-groups", Description: "Server groups: affinity and anti-affinity policies between servers."},
	{Name: "networks", Description: "A project's layer-2 networks: overlays, or VLAN and flat provider networks on a named physical network."},
	{Name: "subnets", Description: "IPv4 ranges on a network, with gateway, DHCP, DNS, allocation pools and host routes; a subnet hands out its ports' addresses."},
	{Name: "ports", Description: "Network interfaces: a MAC, an address from a subnet, and the security groups that let traffic through."},
	{Name: "security-groups", Description: "Named sets of rules that allow traffic to and from the ports in them; every project has a default group."},
	{Name: "routers", Description: "Routers connect a project's subnets to each other (interfaces) and to an external network (a gateway, with SNAT)."},
	{Name: "floating-ips", Description: "Addresses of an external network a project holds; a router translates each to the fixed IP of the port it points at."},
	{Name: "events", Description: "The event log: history with filters, and a live stream."},
	{Name: "usage", Description: "What a project's servers ran, to the second, and its cost from the price table: billing from the event log."},
	{Name: "identity", Description: "Projects, users, their roles, and the bearer tokens every request but a login carries."},
	{Name: "audit", Description: "The audit trail: every command and every refused authentication, chained by hash, as CADF-style JSON lines; and its verification."},
	{Name: "admin", Description: "Operator tools: read-model projections, their lag, and rebuilds; commits whose saga or agent reaction kept failing, parked, with retry and skip."},
}

// apiConfig is huma's configuration for Keel: the document's info, tags and
// schema names, and no docs page that loads scripts from the internet.
func apiConfig() huma.Config {
	cfg := huma.DefaultConfig("Keel", Version)
	cfg.Info.Description = "Keel private-cloud compute control plane. Errors are RFC 9457 problem details. " +
		"The OpenAPI 3.1 document is at /openapi.json, its OpenAPI 3.0 form at /openapi-3.0.json."
	cfg.Info.Contact = &huma.Contact{Name: "Keel", URL: "https://github.com/keel-cloud/keel"}
	cfg.Servers = []*huma.Server{{URL: "http://127.0.0.1:8080", Description: "keel serve on its default address"}}
	cfg.Tags = tags
	cfg.Components.Schemas = huma.NewMapRegistry("#/components/schemas/", schemaName)
	cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"bearer": {Type: "http", Scheme: "bearer", Description: "A token from POST /v1/tokens (keel login), as Authorization: Bearer <token>"},
	}
	cfg.Security = []map[string][]string{{"bearer": {}}}
	cfg.DocsPath = "" // the default docs page loads scripts from the internet
	cfg.CreateHooks = nil
	cfg.Transformers = []huma.Transformer{noNullArrays}
	return cfg
}

// schemaName names schemas as huma does, except pages of a generic list:
// api.List[api.Server] is "ServerList", not "ListServer".
func schemaName(t reflect.Type, hint string) string {
	name := t.Name()
	if base, arg, ok := strings.Cut(name, "["); ok && base == "List" {
		arg = strings.TrimSuffix(arg, "]")
		return arg[strings.LastIndex(arg, ".")+1:] + "List"
	}
	return huma.DefaultSchemaNamer(t, hint)
}

// The headers Keel's middlewares read and write, declared once in the
// document's components and referenced from every operation they apply to.
const (
	hdrRequestID   = "X-Request-Id"
	hdrIdempotency = "Idempotency-Key"
	hdrReplayed    = "Idempotent-Replayed"
	hdrMinSeq      = "Keel-Min-Sequence"
)

// finishDocument completes what huma generated from the handlers' types:
// the headers the middlewares handle, and schemas valid in OpenAPI 3.0 too.
func finishDocument(o *huma.OpenAPI) {
	describeHeaders(o)
	for _, item := range o.Paths {
		for _, op := range operations(item) {
			for _, res := range op.Responses {
				for _, mt := range res.Content {
					constToEnum(mt.Schema)
				}
			}
		}
	}
}

// constToEnum turns huma's "const" (the event names of the SSE stream)
// into a one-value enum, which OpenAPI 3.0 accepts and 3.1 reads the same.
func constToEnum(s *huma.Schema) {
	if s == nil {
		return
	}
	if v, ok := s.Extensions["const"]; ok {
		s.Enum = []any{v}
		delete(s.Extensions, "const")
	}
	constToEnum(s.Items)
	for _, p := range s.Properties {
		constToEnum(p)
	}
	groups := [][]*huma.Schema{s.OneOf, s.AnyOf, s.AllOf}
	if sse, ok := s.Extensions["oneOf"].([]*huma.Schema); ok { // huma's sse package
		groups = append(groups, sse)
	}
	for _, group := range groups {
		for _, sub := range group {
			constToEnum(sub)
		}
	}
}

// describeHeaders declares, on every operation, the headers the
// middlewares (not the handlers' input types) deal with: X-Request-Id on
// every request and response; Idempotency-Key and Idempotent-Replayed on
// every mutating call but the streamed image upload; Keel-Min-Sequence on
// mutating calls too (names are resolved after that sequence).
func describeHeaders(o *huma.OpenAPI) {
	str := &huma.Schema{Type: huma.TypeString}
	c := o.Components
	c.Parameters = map[string]*huma.Param{
		hdrRequestID: {Name: hdrRequestID, In: "header", Schema: &huma.Schema{Type: huma.TypeString, Pattern: validRequestID.String()},
			Description: "Names the request in logs, events and problems; generated when absent or malformed"},
		hdrIdempotency: {Name: hdrIdempotency, In: "header", Schema: &huma.Schema{Type: huma.TypeString, MinLength: ptr(1), MaxLength: ptr(255)},
			Description: "Makes the call safe to retry: the same key and body get the first answer again (kept 72 hours); the same key with another body is a 422"},
		hdrMinSeq: {Name: hdrMinSeq, In: "header", Schema: &huma.Schema{Type: huma.TypeInteger, Format: "int64", Minimum: ptr(0.0)},
			Description: "Resolve names only after the read model has applied this stream sequence (from a Keel-Sequence header)"},
	}
	c.Headers = map[string]*huma.Header{
		hdrRequestID: {Schema: str, Description: "The request's id: the client's X-Request-Id when valid, else a generated one"},
		hdrReplayed:  {Schema: &huma.Schema{Type: huma.TypeString, Enum: []any{"true"}}, Description: "Present when this answer replays the first answer to the Idempotency-Key"},
	}
	for path, item := range o.Paths {
		for method, op := range operations(item) {
			mutating := method != http.MethodGet
			idempotent := mutating && !strings.HasSuffix(path, "/file")
			addParam(op, hdrRequestID)
			if mutating {
				addParam(op, hdrMinSeq)
			}
			if idempotent {
				addParam(op, hdrIdempotency)
			}
			for _, res := range op.Responses {
				addHeader(res, hdrRequestID)
				if idempotent {
					addHeader(res, hdrReplayed)
				}
			}
		}
	}
}

// operations returns a path's operations by method.
func operations(p *huma.PathItem) map[string]*huma.Operation {
	out := map[string]*huma.Operation{}
	for m, op := range map[string]*huma.Operation{http.MethodGet: p.Get, http.MethodPost: p.Post,
		http.MethodPut: p.Put, http.MethodPatch: p.Patch, http.MethodDelete: p.Delete} {
		if op != nil {
			out[m] = op
		}
	}
	return out
}

func addParam(op *huma.Operation, name string) {
	for _, p := range op.Parameters {
		if p.In == "header" && strings.EqualFold(p.Name, name) {
			return // the input type declares it already
		}
	}
	op.Parameters = append(op.Parameters, &huma.Param{Ref: "#/components/parameters/" + name})
}

func addHeader(res *huma.Response, name string) {
	if res.Ref != "" {
		return
	}
	if res.Headers == nil {
		res.Headers = map[string]*huma.Header{}
	}
	if _, ok := res.Headers[name]; !ok {
		res.Headers[name] = &huma.Header{Ref: "#/components/headers/" + name}
	}
}

func ptr[T any](v T) *T { return &v }
