package projections

import (
	"encoding/json"
	"slices"

	"github.com/keel-cloud/keel/domain"
	"github.com/keel-cloud/keel/domain/server"
)

// applyInterface applies the interface events of a server to its row: the
// task while an interface changes, and the NIC added or removed from its
// nics. upd updates the row (with its version); ok is false for other
// events.
func applyInterface(w *Writer, tb string, env domain.Envelope, ev domain.Event, upd func(...Set)) (ok bool, err error) {
	switch e := ev.(type) {
	case *server.InterfaceAttachRequested:
		upd(To("task", string(server.AttachingInterface)), To("operation_id", e.Operation), To("reason", nil))
	case *server.InterfacePortSet:
	case *server.InterfaceDetachRequested:
		upd(To("task", string(server.DetachingInterface)), To("operation_id", e.Operation), To("reason", nil))
	case *server.InterfaceFailed:
		upd(To("task", nil), To("reason", e.Reason))
	case *server.InterfaceAttached:
		return true, changeNICs(w, tb, env, upd, func(nics []server.NIC) []server.NIC { return append(nics, e.NIC) },
			`nics || $5::jsonb`, []server.NIC{e.NIC})
	case *server.InterfaceDetached:
		return true, changeNICs(w, tb, env, upd, func(nics []server.NIC) []server.NIC {
			return slices.DeleteFunc(nics, func(n server.NIC) bool { return n.Port == e.Port })
		}, `COALESCE((SELECT jsonb_agg(n ORDER BY i) FROM jsonb_array_elements(nics) WITH ORDINALITY AS x(n, i) WHERE n->>'port_id' <> $5), '[]')`, e.Port)
	default:
		return false, nil
	}
	return true, nil
}

// changeNICs ends the interface task and changes the row's nics: in Go
// when this batch already set them, else in SQL (expr, with arg as $5).
func changeNICs(w *Writer, tb string, env domain.Envelope, upd func(...Set), change func([]server.NIC) []server.NIC, expr string, arg any) error {
	id := env.AggregateID
	if v, ok := w.Known(tb, idCol, []any{id}, "nics"); ok {
		var nics []server.NIC
		if b, isJSON := v.([]byte); isJSON {
			if err := json.Unmarshal(b, &nics); err != nil {
				return err
			}
		}
		out, err := json.Marshal(nonNilNICs(change(nics)))
		if err != nil {
			return err
		}
		upd(To("task", nil), To("nics", out))
		return nil
	}
	if nics, isNICs := arg.([]server.NIC); isNICs {
		b, err := json.Marshal(nics)
		if err != nil {
			return err
		}
		arg = b
	}
	w.Exec(id, `UPDATE `+tb+` SET version=$2, updated_at=$3, seq=$4, task=NULL, nics=`+expr+` WHERE id=$1`,
		id, env.Version, env.OccurredAt, env.Sequence, arg)
	return nil
}

func nonNilNICs(n []server.NIC) []server.NIC {
	if n == nil {
		return []server.NIC{}
	}
	return n
}
