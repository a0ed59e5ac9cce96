package projections

import (
	"encoding/json"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/floatingip"
	"github.com/keel-cloud/keel/domain/router"
)

// Routers is the read model of routers (with their gateway, interfaces and
// the floating IPs they list) and floating IPs (with their association).
// Deleted resources leave no row.
var Routers = Projection{Name: "routers", Version: 2,
	Tables: []string{"routers", "floating_ips", "router_floating_ips"},
	Apply: func(w *Writer, t Tables, env domain.Envelope, events []domain.Event) error {
		for _, ev := range events {
			var err error
			switch env.AggregateType {
			case router.AggregateType:
				err = applyRouter(w, t, env, ev)
			case floatingip.AggregateType:
				applyFloatingIP(w, t, env, ev)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}}

func applyRouter(w *Writer, t Tables, env domain.Envelope, ev domain.Event) error {
	id, rt := env.AggregateID, t.T("routers")
	switch e := ev.(type) {
	case *router.Created:
		w.Exec(id, `INSERT INTO `+rt+` (id, project_id, name, created_at, seq) VALUES ($1,$2,$3,$4,$5) ON CONFLICT (id) DO NOTHING`,
			id, e.Project, e.Name, e.At, env.Sequence)
	case *router.GatewaySet:
		g, err := json.Marshal(e.Gateway)
		if err != nil {
			return err
		}
		w.Exec(id, `UPDATE `+rt+` SET gateway=$2, seq=$3 WHERE id=$1`, id, g, env.Sequence)
	case *router.GatewayCleared:
		w.Exec(id, `UPDATE `+rt+` SET gateway=NULL, seq=$2 WHERE id=$1`, id, env.Sequence)
	case *router.InterfaceAdded:
		in, err := json.Marshal(e.Interface)
		if err != nil {
			return err
		}
		w.Exec(id, `UPDATE `+rt+` SET interfaces = interfaces || jsonb_build_array($2::jsonb), seq=$3 WHERE id=$1`, id, in, env.Sequence)
	case *router.InterfaceRemoved:
		w.Exec(id, `UPDATE `+rt+` SET interfaces = (SELECT coalesce(jsonb_agg(i ORDER BY n), '[]') FROM jsonb_array_elements(interfaces) WITH ORDINALITY AS x(i, n)
			WHERE i->>'port_id' <> $2), seq=$3 WHERE id=$1`, id, e.Interface.Port, env.Sequence)
	case *router.FloatingIPAttached:
		w.Exec(id, `INSERT INTO `+t.T("router_floating_ips")+` (router_id, floating_ip_id, attached_at, seq) VALUES ($1,$2,$3,$4)
			ON CONFLICT (router_id, floating_ip_id) DO UPDATE SET attached_at=EXCLUDED.attached_at, seq=EXCLUDED.seq`, id, e.FloatingIP.ID, e.At, env.Sequence)
	case *router.FloatingIPDetached:
		w.Exec(id, `DELETE FROM `+t.T("router_floating_ips")+` WHERE router_id=$1 AND floating_ip_id=$2`, id, e.FloatingIP.ID)
	case *router.Deleted:
		w.Exec(id, `DELETE FROM `+rt+` WHERE id=$1`, id)
		w.Exec(id, `DELETE FROM `+t.T("router_floating_ips")+` WHERE router_id=$1`, id)
	}
	return nil
}

func applyFloatingIP(w *Writer, t Tables, env domain.Envelope, ev domain.Event) {
	id, ft := env.AggregateID, t.T("floating_ips")
	switch e := ev.(type) {
	case *floatingip.Created:
		w.Exec(id, `INSERT INTO `+ft+` (id, project_id, network_id, subnet_id, ip, created_at, seq) VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (id) DO NOTHING`,
			id, e.Project, e.Network, e.Subnet, e.IP, e.At, env.Sequence)
	case *floatingip.Associated:
		a := e.Association
		w.Exec(id, `UPDATE `+ft+` SET port_id=$2, fixed_ip=$3, router_id=$4, seq=$5 WHERE id=$1`, id, a.Port, a.FixedIP, a.Router, env.Sequence)
	case *floatingip.Disassociated:
		w.Exec(id, `UPDATE `+ft+` SET port_id=NULL, fixed_ip=NULL, router_id=NULL, seq=$2 WHERE id=$1`, id, env.Sequence)
	case *floatingip.Deleted:
		w.Exec(id, `DELETE FROM `+ft+` WHERE id=$1`, id)
	}
}
