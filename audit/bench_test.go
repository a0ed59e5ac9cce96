package audit_test

import (
	"testing"

	"github.com/keel-cloud/keel/audit"
)

func BenchmarkVerifierAdd(b *testing.B) {
	t := &testing.T{}
	rows := chain(t, 1000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var v audit.Verifier
		for _, r := range rows {
			v.Add(r)
		}
	}
}
