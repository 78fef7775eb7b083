package report

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// Bounds and defaults of the parameters, as in the schema of Params.
const (
	MinCountries      = 1
	MaxCountries      = 50
	DefaultCountries  = 12
	MinRowsPerCountry = 10
	MaxRowsPerCountry = 100_000
	DefaultRows       = 2000
	MaxTitleLength    = 80
	DefaultTitle      = "Orders by country"
)

// Params are the parameters of a report. The tags are the kind's parameters
// schema (github.com/invopop/jsonschema syntax); the servers validate every new
// task against it and fill in the defaults.
type Params struct {
	// Countries is the number of countries covered, the largest markets first.
	Countries int `json:"countries" jsonschema:"minimum=1,maximum=50,default=12,title=Countries,description=Number of countries in the report (the largest markets first)"`
	// RowsPerCountry is the number of orders generated and aggregated for each
	// country.
	RowsPerCountry int `json:"rowsPerCountry" jsonschema:"minimum=10,maximum=100000,default=2000,title=Orders per country,description=Number of generated orders aggregated for each country"`
	// Title is printed on the cover and at the foot of every page; empty means
	// DefaultTitle.
	Title string `json:"title" jsonschema:"maxLength=80,default=Orders by country,title=Title,description=Title printed on the cover and at the foot of every page"`
}

// ErrInvalidParams is the error of parameters out of their bounds (the
// servers refuse them before they reach a worker; direct callers get this).
var ErrInvalidParams = errors.New("report: invalid parameters")

// Validate checks p against the bounds of the schema.
func (p Params) Validate() error {
	switch {
	case p.Countries < MinCountries || p.Countries > MaxCountries:
		return fmt.Errorf("%w: countries is %d, want %d to %d", ErrInvalidParams, p.Countries, MinCountries, MaxCountries)
	case p.RowsPerCountry < MinRowsPerCountry || p.RowsPerCountry > MaxRowsPerCountry:
		return fmt.Errorf("%w: rowsPerCountry is %d, want %d to %d", ErrInvalidParams, p.RowsPerCountry, MinRowsPerCountry, MaxRowsPerCountry)
	case utf8.RuneCountInString(p.Title) > MaxTitleLength:
		return fmt.Errorf("%w: title has %d characters, want at most %d", ErrInvalidParams, utf8.RuneCountInString(p.Title), MaxTitleLength)
	case !utf8.ValidString(p.Title):
		return fmt.Errorf("%w: title is not UTF-8", ErrInvalidParams)
	}
	return nil
}

// Rows returns the number of orders of a report with p.
func (p Params) Rows() int64 { return int64(p.Countries) * int64(p.RowsPerCountry) }

// Pages returns the number of pages of a report with p: the cover, the chart
// and the pages of the table.
func (p Params) Pages() int {
	return 2 + (tableLines(p.Countries)+tableRowsPerPage-1)/tableRowsPerPage
}

// tableLines is the number of body lines of the table of n countries: twelve
// months and a total per country, and the grand total.
func tableLines(n int) int { return 13*n + 1 }
