package httpapi

import (
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/keel-cloud/keel/domain/user"
)

// Rule is who may call an operation. Every principal has at least the
// reader role in the project of its token (else its token is refused).
type Rule int

// Rules, from the most open.
const (
	// Anyone may call it, with or without a token (a password login).
	Anyone Rule = iota + 1
	// Reader: any principal; what it reads is scoped to its project.
	Reader
	// Member: the member or admin role in the token's project.
	Member
	// ProjectAdmin: the admin role in the token's project.
	ProjectAdmin
	// CloudAdmin: an admin of the admin project.
	CloudAdmin
)

func (r Rule) String() string {
	return [...]string{"", "anyone", "reader", "member", "project admin", "cloud admin"}[r]
}

// Policy is the one table from operation to who may call it. A cloud
// admin may call every operation. An operation missing here is refused to
// everyone (and TestEveryOperationHasAPolicy fails).
var Policy = map[string]Rule{
	// Identity.
	"create-token": Anyone, "list-tokens": Reader, "revoke-token": Reader, "get-whoami": Reader,
	"list-projects": Reader, "get-project": Reader, "create-project": CloudAdmin, "delete-project": CloudAdmin,
	"list-members": Reader, "set-member": ProjectAdmin, "remove-member": ProjectAdmin,
	"get-project-quotas": Reader, "set-project-quotas": CloudAdmin,
	"list-users": CloudAdmin, "get-user": Reader, "create-user": CloudAdmin, "delete-user": CloudAdmin, "set-user-password": Reader,
	// The catalogue every project boots from.
	"list-flavors": Reader, "get-flavor": Reader, "create-flavor": CloudAdmin, "delete-flavor": CloudAdmin,
	"list-images": Reader, "get-image": Reader, "create-image": Member, "upload-image": Member, "delete-image": Member,
	"list-availability-zones": Reader,
	// A project's own resources.
	"list-keypairs": Reader, "get-keypair": Reader, "create-keypair": Member, "delete-keypair": Member,
	"list-servers": Reader, "get-server": Reader, "create-server": Member, "delete-server": Member,
	"start-server": Member, "stop-server": Member, "reboot-server": Member,
	"attach-server-interface": Member, "detach-server-interface": Member,
	"get-server-login-info": Member, "get-server-console": Member, "get-server-console-log": Member,
	"list-server-groups": Reader, "get-server-group": Reader, "create-server-group": Member, "delete-server-group": Member,
	"list-networks": Reader, "get-network": Reader, "create-network": Member, "delete-network": Member,
	"list-subnets": Reader, "get-subnet": Reader, "create-subnet": Member, "delete-subnet": Member,
	"list-ports": Reader, "get-port": Reader, "create-port": Member, "delete-port": Member,
	"set-port-security-groups": Member,
	"list-security-groups":     Reader, "get-security-group": Reader, "create-security-group": Member, "delete-security-group": Member,
	"list-security-group-rules": Reader, "get-security-group-rule": Reader, "create-security-group-rule": Member, "delete-security-group-rule": Member,
	"list-routers": Reader, "get-router": Reader, "create-router": Member, "delete-router": Member,
	"add-router-interface": Member, "remove-router-interface": Member, "set-router-gateway": Member, "clear-router-gateway": Member,
	"list-floating-ips": Reader, "get-floating-ip": Reader, "create-floating-ip": Member, "delete-floating-ip": Member,
	"associate-floating-ip": Member, "disassociate-floating-ip": Member,
	"list-operations": Reader, "get-operation": Reader,
	"list-events": Reader, "stream-events": Reader,
	"get-usage": Reader,
	// The cloud itself.
	"list-hosts": CloudAdmin, "get-host": CloudAdmin, "delete-host": CloudAdmin,
	"enable-host": CloudAdmin, "disable-host": CloudAdmin, "start-host-maintenance": CloudAdmin, "end-host-maintenance": CloudAdmin,
	"set-host-overcommit": CloudAdmin, "put-host-overcommit": CloudAdmin, "issue-host-credentials": CloudAdmin,
	"revoke-host-credentials": CloudAdmin,
	"create-aggregate":        CloudAdmin, "list-aggregates": CloudAdmin, "get-aggregate": CloudAdmin, "set-aggregate-metadata": CloudAdmin,
	"add-aggregate-host": CloudAdmin, "remove-aggregate-host": CloudAdmin, "delete-aggregate": CloudAdmin,
	"list-projections": CloudAdmin, "rebuild-projection": CloudAdmin,
	"list-parked": CloudAdmin, "retry-parked": CloudAdmin, "skip-parked": CloudAdmin,
	// The audit trail.
	"list-audit": ProjectAdmin, "verify-audit": CloudAdmin,
}

// Allowed reports whether a principal of role (cloud admin or not) may
// call an operation of rule r. authenticated false: no token.
func Allowed(r Rule, authenticated, cloudAdmin bool, role user.Role) bool {
	switch {
	case r == Anyone:
		return true
	case !authenticated:
		return false
	case cloudAdmin:
		return true
	case r == Reader:
		return role.Rank() >= user.Reader.Rank()
	case r == Member:
		return role.Rank() >= user.Member.Rank()
	case r == ProjectAdmin:
		return role == user.Admin
	}
	return false
}

// enforce is the huma middleware that applies Policy before any handler.
func enforce(hapi huma.API) func(huma.Context, func(huma.Context)) {
	return func(hctx huma.Context, next func(huma.Context)) {
		op := hctx.Operation()
		rule, ok := Policy[op.OperationID]
		if !ok {
			_ = huma.WriteErr(hapi, hctx, http.StatusForbidden, "operation "+op.OperationID+" has no policy; refused")
			return
		}
		p, authed := principalFrom(hctx.Context())
		if Allowed(rule, authed, p.CloudAdmin, p.Role) {
			next(hctx)
			return
		}
		if !authed {
			hctx.SetHeader("WWW-Authenticate", `Bearer realm="keel"`)
			_ = huma.WriteErr(hapi, hctx, http.StatusUnauthorized, "authentication required")
			return
		}
		msg := op.OperationID + " needs the " + rule.String() + " role"
		if rule != CloudAdmin {
			msg += " in the token's project"
		}
		if p.ReadOnly {
			msg += "; this token is read-only"
		} else {
			msg += "; you are " + string(p.Role)
		}
		_ = huma.WriteErr(hapi, hctx, http.StatusForbidden, msg)
	}
}
