package audit_test

import (
	"testing"

	"github.com/keel-cloud/keel/audit"
)

// BenchmarkVerifierAdd is the verifier's own cost per row (go test -bench).
func BenchmarkVerifierAdd(b *testing.B) {
	rows := chain(b, 1000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var v audit.Verifier
		for _, r := range rows {
			v.Add(r)
		}
	}
}
