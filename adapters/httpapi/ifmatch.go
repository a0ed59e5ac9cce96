package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"
)

// IfMatch is embedded in the inputs of updates that take a precondition.
type IfMatch struct {
	IfMatch string `header:"If-Match" maxLength:"64" doc:"The aggregate version the change is based on, as the ETag of a GET gives it (\"7\"); a stale one is refused with 412. * or absent: no precondition."`
}

// version is the aggregate version If-Match names, 0 for none. A tag that
// is no version can match no resource: it is refused with 412, as a stale
// one is (RFC 9110, 13.1.1).
func (m IfMatch) version(ctx context.Context) (uint64, error) {
	tag := strings.TrimSpace(m.IfMatch)
	if tag == "" || tag == "*" {
		return 0, nil
	}
	v, err := strconv.ParseUint(strings.Trim(strings.TrimPrefix(tag, "W/"), `"`), 10, 64)
	if err != nil || v == 0 {
		return 0, problem(ctx, http.StatusPreconditionFailed, "If-Match must be one aggregate version as the ETag of a GET gives it, such as \"7\"; got "+strconv.Quote(tag))
	}
	return v, nil
}

// etag is the ETag of an aggregate at version v.
func etag(v int64) string { return `"` + strconv.FormatInt(v, 10) + `"` }
