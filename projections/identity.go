package projections

import (
	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/project"
	"github.com/keel-cloud/keel/domain/token"
	"github.com/keel-cloud/keel/domain/user"
)

// Identity is the projects, users, role_assignments and tokens tables:
// what the identity endpoints list. Authentication itself reads the event
// log (commands.App.Authenticate), never these tables. No secret, nor a
// password hash, reaches them.
var Identity = Projection{Name: "identity", Version: 1, Tables: []string{"projects", "users", "role_assignments", "tokens"},
	Apply: func(w *Writer, t Tables, env domain.Envelope, events []domain.Event) error {
		ps, us, rs, ts := t.T("projects"), t.T("users"), t.T("role_assignments"), t.T("tokens")
		id := env.AggregateID
		for _, ev := range events {
			switch e := ev.(type) {
			case *project.Created:
				w.Exec(id, `INSERT INTO `+ps+` (id, name, description, created_at, seq) VALUES ($1,$2,$3,$4,$5) ON CONFLICT (id) DO NOTHING`,
					e.ID, e.Name, e.Description, e.CreatedAt, env.Sequence)
			case *project.Deleted:
				w.Exec(id, `DELETE FROM `+ps+` WHERE id=$1`, e.ID)
				w.Exec(id, `DELETE FROM `+rs+` WHERE project_id=$1`, e.ID)
			case *user.Created:
				w.Exec(id, `INSERT INTO `+us+` (id, name, created_at, seq) VALUES ($1,$2,$3,$4) ON CONFLICT (id) DO NOTHING`,
					e.ID, e.Name, e.CreatedAt, env.Sequence)
			case *user.RoleGranted:
				w.Exec(id, `INSERT INTO `+rs+` (user_id, project_id, role, granted_at) VALUES ($1,$2,$3,$4)
					ON CONFLICT (user_id, project_id) DO UPDATE SET role=$3, granted_at=$4`, e.ID, e.Project, string(e.Role), e.At)
			case *user.RoleRevoked:
				w.Exec(id, `DELETE FROM `+rs+` WHERE user_id=$1 AND project_id=$2`, e.ID, e.Project)
			case *user.Deleted:
				w.Exec(id, `DELETE FROM `+us+` WHERE id=$1`, e.ID)
				w.Exec(id, `DELETE FROM `+rs+` WHERE user_id=$1`, e.ID)
			case *token.Issued:
				w.Exec(id, `INSERT INTO `+ts+` (id, user_id, project_id, name, read_only, created_at, expires_at, seq)
					VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (id) DO NOTHING`,
					e.ID, e.Spec.User, e.Spec.Project, e.Spec.Name, e.Spec.ReadOnly, e.CreatedAt, e.Spec.ExpiresAt, env.Sequence)
			case *token.Revoked:
				w.Exec(id, `UPDATE `+ts+` SET revoked_at=$2, seq=$3 WHERE id=$1`, e.ID, e.RevokedAt, env.Sequence)
			}
		}
		return nil
	}}
