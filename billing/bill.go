package billing

import "math"

// Flavor is the size a server ran at, as its server.created recorded it.
type Flavor struct {
	ID     string
	Name   string
	VCPUs  int
	RAMMiB int
}

// Usage is how long one resource ran at one flavor within a window, in
// whole seconds.
type Usage struct {
	ResourceType string
	ResourceID   string
	Name         string
	Flavor       Flavor
	Seconds      int64
}

// Line is a Usage with its hours and cost.
type Line struct {
	Usage
	Hours       float64
	VCPUHours   float64
	RAMGiBHours float64
	Cost        float64
}

// Totals sum the lines of a bill.
type Totals struct {
	ServerHours float64
	VCPUHours   float64
	RAMGiBHours float64
	Cost        float64
}

// Bill is the priced usage of a window.
type Bill struct {
	Currency string
	Lines    []Line
	Totals   Totals
}

// Bill prices usage. Hours are seconds / 3600; each line's figures are
// computed from its whole seconds and rounded to six decimals (a
// micro-unit of the currency), and the totals sum the rounded lines, so
// that a bill adds up as printed.
func (p Prices) Bill(usage []Usage) Bill {
	b := Bill{Currency: p.Currency, Lines: make([]Line, 0, len(usage))}
	for _, u := range usage {
		h := float64(u.Seconds) / 3600
		l := Line{Usage: u, Hours: round6(h), VCPUHours: round6(h * float64(u.Flavor.VCPUs)),
			RAMGiBHours: round6(h * float64(u.Flavor.RAMMiB) / 1024), Cost: round6(h * p.Hourly(u.Flavor))}
		b.Lines = append(b.Lines, l)
		b.Totals.ServerHours += l.Hours
		b.Totals.VCPUHours += l.VCPUHours
		b.Totals.RAMGiBHours += l.RAMGiBHours
		b.Totals.Cost += l.Cost
	}
	t := &b.Totals
	t.ServerHours, t.VCPUHours, t.RAMGiBHours, t.Cost = round6(t.ServerHours), round6(t.VCPUHours), round6(t.RAMGiBHours), round6(t.Cost)
	return b
}

func round6(x float64) float64 { return math.Round(x*1e6) / 1e6 }
