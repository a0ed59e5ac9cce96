package billing_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keel-cloud/keel/billing"
)

func TestParseReadsATableAndRefusesMistakes(t *testing.T) {
	p, err := billing.Parse([]byte(`{"currency":"EUR","flavors":{"m1.small":0.012},"vcpu_hour":0.01,"ram_gib_hour":0.005}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Hourly(billing.Flavor{Name: "m1.small", VCPUs: 1, RAMMiB: 2048}); got != 0.012 {
		t.Errorf("m1.small costs %v an hour; want its own price 0.012", got)
	}
	if got := p.Hourly(billing.Flavor{Name: "m1.large", VCPUs: 4, RAMMiB: 8192}); got != 0.08 {
		t.Errorf("m1.large costs %v an hour; want 4 × 0.01 + 8 × 0.005 = 0.08", got)
	}
	for _, c := range []struct{ table, says string }{
		{`{"currency":"EUR","vcpu_hours":1}`, `unknown field "vcpu_hours"`},
		{`{"currency":"EUR","vcpu_hour":-1}`, "vcpu_hour is -1"},
		{`{"currency":"EUR","flavors":{"m1.tiny":-0.5}}`, `flavor "m1.tiny" is -0.5`},
		{`{"vcpu_hour":1}`, `"currency" is missing`},
		{`{"currency":"EUR"} {}`, "more than one JSON value"},
		{`[1]`, "not a price table"},
	} {
		_, err := billing.Parse([]byte(c.table))
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("Parse(%s) = %v; want an error saying %q", c.table, err, c.says)
		}
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "prices.json")
	if err := os.WriteFile(path, []byte(`{"currency":"EUR","ram_gib_hour":-2}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := billing.Load(path); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "ram_gib_hour is -2") {
		t.Errorf("Load = %v; want an error naming %s and ram_gib_hour", err, path)
	}
}

// No table: everything is free, in no currency.
func TestTheZeroTablePricesNothing(t *testing.T) {
	b := billing.Prices{}.Bill([]billing.Usage{{ResourceID: "s", Flavor: billing.Flavor{Name: "x", VCPUs: 2, RAMMiB: 1024}, Seconds: 5400}})
	if b.Currency != "" || b.Totals != (billing.Totals{ServerHours: 1.5, VCPUHours: 3, RAMGiBHours: 1.5}) {
		t.Errorf("bill = %+v; want 1.5 h, 3 vCPU-h, 1.5 GiB-h and no cost", b)
	}
}
