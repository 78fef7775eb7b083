package report

import (
	"context"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
)

// country is one country of the dataset: its code, its name, and mu, the mean
// of the logarithm of its order amounts in US dollars (the price level of its
// shop).
type country struct {
	code, name string
	mu         float64
}

// countries are the countries a report can cover, the largest markets first; a
// report of n countries takes the first n.
var countries = []country{
	{"US", "United States", 3.85}, {"DE", "Germany", 3.75}, {"GB", "United Kingdom", 3.80},
	{"FR", "France", 3.70}, {"JP", "Japan", 3.90}, {"CA", "Canada", 3.78},
	{"AU", "Australia", 3.82}, {"IT", "Italy", 3.62}, {"ES", "Spain", 3.55},
	{"NL", "Netherlands", 3.72}, {"BR", "Brazil", 3.30}, {"IN", "India", 3.05},
	{"MX", "Mexico", 3.25}, {"SE", "Sweden", 3.76}, {"CH", "Switzerland", 4.05},
	{"PL", "Poland", 3.40}, {"BE", "Belgium", 3.68}, {"AT", "Austria", 3.71},
	{"DK", "Denmark", 3.79}, {"NO", "Norway", 3.95}, {"FI", "Finland", 3.66},
	{"IE", "Ireland", 3.77}, {"PT", "Portugal", 3.45}, {"CZ", "Czechia", 3.38},
	{"KR", "South Korea", 3.74}, {"SG", "Singapore", 3.92}, {"NZ", "New Zealand", 3.70},
	{"AR", "Argentina", 3.15}, {"CL", "Chile", 3.28}, {"CO", "Colombia", 3.10},
	{"ZA", "South Africa", 3.20}, {"TR", "Turkey", 3.12}, {"GR", "Greece", 3.42},
	{"HU", "Hungary", 3.33}, {"RO", "Romania", 3.22}, {"IL", "Israel", 3.73},
	{"AE", "United Arab Emirates", 4.00}, {"SA", "Saudi Arabia", 3.88}, {"TH", "Thailand", 3.08},
	{"MY", "Malaysia", 3.18}, {"ID", "Indonesia", 2.95}, {"PH", "Philippines", 2.98},
	{"VN", "Vietnam", 2.90}, {"EG", "Egypt", 2.85}, {"NG", "Nigeria", 2.80},
	{"KE", "Kenya", 2.82}, {"PE", "Peru", 3.05}, {"UA", "Ukraine", 3.00},
	{"HK", "Hong Kong", 3.93}, {"TW", "Taiwan", 3.69},
}

// monthWeights make the order volume seasonal: a quiet summer, a busy
// November and December.
var monthWeights = [12]float64{0.9, 0.8, 0.95, 0.95, 1.0, 0.9, 0.85, 0.85, 1.0, 1.05, 1.3, 1.45}

// Month is the orders of one country in one month.
type Month struct {
	// Orders is the number of orders.
	Orders int64
	// Revenue is their total in US dollars.
	Revenue float64
	// Largest is the largest order, in US dollars.
	Largest float64
}

// Country is the orders of one country over the year of the report.
type Country struct {
	// Code is the ISO 3166-1 alpha-2 code ("DE").
	Code string
	// Name is the English name ("Germany").
	Name string
	// Months are January to December.
	Months [12]Month
	// Orders, Revenue and Largest are those of the whole year.
	Orders  int64
	Revenue float64
	Largest float64
}

// Average returns the average order of the year, in US dollars.
func (c *Country) Average() float64 {
	if c.Orders == 0 {
		return 0
	}
	return c.Revenue / float64(c.Orders)
}

// Dataset is the aggregated orders of a report: one Country per country, in
// the order of the country list (largest markets first).
type Dataset struct {
	// Title is the report's title.
	Title string
	// Seed is the seed the orders were drawn from.
	Seed string
	// Year is the year the orders are dated in.
	Year int
	// Countries are the aggregates, one per country.
	Countries []Country
	// Orders and Revenue are the totals of every country.
	Orders  int64
	Revenue float64
}

// ByRevenue returns the countries, largest revenue first (ties by code).
func (d *Dataset) ByRevenue() []*Country {
	out := make([]*Country, len(d.Countries))
	for i := range d.Countries {
		out[i] = &d.Countries[i]
	}
	slices.SortStableFunc(out, func(a, b *Country) int {
		switch {
		case a.Revenue > b.Revenue:
			return -1
		case a.Revenue < b.Revenue:
			return 1
		}
		return 0
	})
	return out
}

// rng returns the random generator of seed: two runs with one seed draw the
// same orders.
func rng(seed string) *rand.Rand {
	h := fnv.New64a()
	_, _ = h.Write([]byte(seed))
	s := h.Sum64()
	return rand.New(rand.NewPCG(s, s^0x9e3779b97f4a7c15))
}

// cumulative month weights, for drawing a month.
var monthCDF = func() [12]float64 {
	var c [12]float64
	sum := 0.0
	for _, w := range monthWeights {
		sum += w
	}
	acc := 0.0
	for i, w := range monthWeights {
		acc += w / sum
		c[i] = acc
	}
	c[11] = 1
	return c
}()

// checkEvery is how many orders are drawn between two looks at the context.
const checkEvery = 4096

// Query draws p.RowsPerCountry orders for each of the first p.Countries
// countries from the generator of seed and aggregates them by country and
// month. Amounts follow a long-tailed (log-normal) distribution around each
// country's price level, months a seasonal one. step, when not nil, is called
// after each country; its error stops the query. Query returns ctx's cause
// when ctx ends first.
func Query(ctx context.Context, p Params, seed string, step func(ctx context.Context, done int) error) (*Dataset, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	r := rng(seed)
	ds := &Dataset{Title: p.Title, Seed: seed, Year: 2020 + r.IntN(6), Countries: make([]Country, p.Countries)}
	for i := range p.Countries {
		src := countries[i]
		c := &ds.Countries[i]
		c.Code, c.Name = src.code, src.name
		// Every country's level moves a little from one dataset to another.
		mu := src.mu + 0.1*r.NormFloat64()
		for n := range p.RowsPerCountry {
			if n%checkEvery == checkEvery-1 && ctx.Err() != nil {
				return nil, context.Cause(ctx)
			}
			usd := math.Exp(mu + 0.95*r.NormFloat64())
			usd = math.Round(min(max(usd, 1), 25_000)*100) / 100
			u := r.Float64()
			m := 0
			for m < 11 && u > monthCDF[m] {
				m++
			}
			mo := &c.Months[m]
			mo.Orders++
			mo.Revenue += usd
			mo.Largest = max(mo.Largest, usd)
		}
		for _, mo := range c.Months {
			c.Orders += mo.Orders
			c.Revenue += mo.Revenue
			c.Largest = max(c.Largest, mo.Largest)
		}
		ds.Orders += c.Orders
		ds.Revenue += c.Revenue
		if err := ctx.Err(); err != nil {
			return nil, context.Cause(ctx)
		}
		if step != nil {
			if err := step(ctx, i+1); err != nil {
				return nil, err
			}
		}
	}
	return ds, nil
}
