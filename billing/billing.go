// Package billing prices usage: a price table (keel serve --prices FILE)
// and the bill of a window, from the time each resource ran. It is pure:
// the intervals come from the read model (projections.Usage, read by
// adapters/postgres), and nothing here reads a clock, a file other than
// the one Load is given, or the database.
package billing

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
)

// Prices is the price table: an hourly price per flavor name, else per
// vCPU-hour and RAM GiB-hour. The zero value prices everything at 0.
type Prices struct {
	// Currency is shown with every bill ("" when no table was given).
	Currency string `json:"currency"`
	// Flavors are hourly prices of a running server, by flavor name.
	Flavors map[string]float64 `json:"flavors"`
	// VCPUHour and RAMGiBHour price the servers of other flavors.
	VCPUHour   float64 `json:"vcpu_hour"`
	RAMGiBHour float64 `json:"ram_gib_hour"`
}

// Load reads a price table from a JSON file; see Parse.
func Load(path string) (Prices, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Prices{}, fmt.Errorf("price table: %w", err)
	}
	p, err := Parse(b)
	if err != nil {
		return Prices{}, fmt.Errorf("price table %s: %w", path, err)
	}
	return p, nil
}

// Parse reads a price table: {"currency": "EUR", "flavors": {"m1.small":
// 0.012}, "vcpu_hour": 0.01, "ram_gib_hour": 0.005}. Unknown fields, a
// missing currency, and negative or non-finite prices are refused.
func Parse(b []byte) (Prices, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p Prices
	if err := dec.Decode(&p); err != nil {
		return Prices{}, fmt.Errorf("not a price table: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Prices{}, errors.New("not a price table: more than one JSON value")
	}
	return p, p.check()
}

func (p Prices) check() error {
	if p.Currency == "" {
		return errors.New(`"currency" is missing (e.g. "EUR")`)
	}
	bad := func(name string, v float64) error {
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%s is %v; prices are zero or more", name, v)
		}
		return nil
	}
	errs := []error{bad("vcpu_hour", p.VCPUHour), bad("ram_gib_hour", p.RAMGiBHour)}
	for _, name := range slices.Sorted(maps.Keys(p.Flavors)) {
		errs = append(errs, bad(fmt.Sprintf("the price of flavor %q", name), p.Flavors[name]))
	}
	return errors.Join(errs...)
}

// Hourly is the price of one hour of a running server of flavor f: its
// name's price in the table, else vCPUs × vcpu_hour + RAM GiB × ram_gib_hour.
func (p Prices) Hourly(f Flavor) float64 {
	if price, ok := p.Flavors[f.Name]; ok {
		return price
	}
	return float64(f.VCPUs)*p.VCPUHour + float64(f.RAMMiB)/1024*p.RAMGiBHour
}
