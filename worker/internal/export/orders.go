// Package export implements the "export" task: a CSV file of orders, generated
// row by row and stored in Redis as it is written.
//
// The data are made up but look real: order ids, customer names, countries with
// their currencies, amounts on a long-tailed distribution in each currency's usual
// range, and creation times that move forward like a shop's order log. Everything
// is drawn from a random generator seeded with the task id, so a task that runs
// again after a crash writes byte for byte the same file.
package export

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strconv"
)

// Header is the first line of every export.
const Header = "id,customer,country,amount,currency,created_at\n"

// Columns are the column names of the export, in order.
var Columns = []string{"id", "customer", "country", "amount", "currency", "created_at"}

var firstNames = []string{
	"Amelia", "Liam", "Olivia", "Noah", "Emma", "Lucas", "Sofia", "Mateo", "Mia", "Leon",
	"Chloe", "Hugo", "Isabella", "Elias", "Ava", "Jonas", "Yuki", "Haruto", "Aarav", "Priya",
	"Camila", "Santiago", "Zoe", "Felix", "Ingrid", "Oskar", "Maja", "Jakub", "Zofia", "Luca",
	"Giulia", "Pierre", "Léa", "Jack", "Charlotte", "William", "Grace", "Ethan", "Hannah", "Diego",
	"Valentina", "Arjun", "Ananya", "Sota", "Hina", "Tom", "Emily", "Max",
}

var lastNames = []string{
	"Smith", "Johnson", "Brown", "Garcia", "Miller", "Davis", "Martinez", "Wilson", "Taylor", "Thomas",
	"Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Dubois", "Martin", "Bernard", "Rossi", "Russo",
	"Ferrari", "Fernández", "López", "González", "de Vries", "Jansen", "Andersson", "Johansson", "Nowak", "Kowalski",
	"Wiśniewska", "Tanaka", "Suzuki", "Sato", "Patel", "Sharma", "Singh", "Silva", "Santos", "Oliveira",
	"Tremblay", "Roy", "Nguyen", "Kelly", "Murphy", "Walsh", "Keller", "Meier",
}

// country is a country with its currency, its share of orders, and how many units
// of its currency one US dollar buys (roughly).
type country struct {
	code, currency string
	weight         int
	rate           float64
	decimals       int
}

var countries = []country{
	{"US", "USD", 30, 1, 2},
	{"GB", "GBP", 10, 0.79, 2},
	{"DE", "EUR", 12, 0.92, 2},
	{"FR", "EUR", 8, 0.92, 2},
	{"ES", "EUR", 4, 0.92, 2},
	{"IT", "EUR", 4, 0.92, 2},
	{"NL", "EUR", 3, 0.92, 2},
	{"SE", "SEK", 2, 10.5, 2},
	{"PL", "PLN", 2, 4.0, 2},
	{"CH", "CHF", 2, 0.88, 2},
	{"CA", "CAD", 5, 1.36, 2},
	{"AU", "AUD", 4, 1.52, 2},
	{"JP", "JPY", 5, 150, 0},
	{"BR", "BRL", 3, 5.0, 2},
	{"IN", "INR", 4, 83, 2},
	{"MX", "MXN", 2, 17, 2},
}

// countryTable maps a uniform draw in [0, 100) to a country by weight.
var countryTable = func() []uint8 {
	var t []uint8
	for i, c := range countries {
		for range c.weight {
			t = append(t, uint8(i))
		}
	}
	return t
}()

// Generator produces the rows of one export in order. Two generators for the same
// task id produce the same rows. It is not safe for concurrent use.
type Generator struct {
	rng     *rand.Rand
	nextID  int64
	unix    int64 // seconds of the last order
	day     int64 // unix day whose date is in date
	date    []byte
	dayBase int64
}

// epoch is 2024-01-01T00:00:00Z; exports start somewhere in the year after it.
const epoch = 1704067200

// NewGenerator returns the generator of the export of task id.
func NewGenerator(taskID string) *Generator {
	h := fnv.New64a()
	_, _ = h.Write([]byte(taskID))
	seed := h.Sum64()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return &Generator{
		rng:    rng,
		nextID: 10_000_000 + rng.Int64N(80_000_000),
		unix:   epoch + rng.Int64N(365*86400),
		day:    -1,
	}
}

// AppendRow appends the next row, with its line end, to dst.
func (g *Generator) AppendRow(dst []byte) []byte {
	r := g.rng
	// id
	dst = append(dst, "ORD-"...)
	dst = strconv.AppendInt(dst, g.nextID, 10)
	g.nextID += 1 + int64(r.IntN(3)) // a few ids belong to cancelled carts
	dst = append(dst, ',')
	// customer
	dst = append(dst, firstNames[r.IntN(len(firstNames))]...)
	dst = append(dst, ' ')
	dst = append(dst, lastNames[r.IntN(len(lastNames))]...)
	dst = append(dst, ',')
	// country
	c := &countries[countryTable[r.IntN(len(countryTable))]]
	dst = append(dst, c.code...)
	dst = append(dst, ',')
	// amount: log-normal around 40 USD, long tail, at least 1 USD, in local currency
	usd := math.Exp(3.7 + 0.95*r.NormFloat64())
	usd = min(max(usd, 1), 25_000)
	dst = appendAmount(dst, usd*c.rate, c.decimals)
	dst = append(dst, ',')
	// currency
	dst = append(dst, c.currency...)
	dst = append(dst, ',')
	// created_at: orders arrive every 40 s on average
	g.unix += 1 + int64(r.ExpFloat64()*40)
	dst = g.appendTime(dst, g.unix)
	return append(dst, '\n')
}

// appendAmount appends v with the given number of decimals (0 or 2).
func appendAmount(dst []byte, v float64, decimals int) []byte {
	if decimals == 0 {
		return strconv.AppendInt(dst, int64(math.Round(v)), 10)
	}
	cents := int64(math.Round(v * 100))
	dst = strconv.AppendInt(dst, cents/100, 10)
	dst = append(dst, '.')
	c := cents % 100
	dst = append(dst, byte('0'+c/10), byte('0'+c%10))
	return dst
}

// appendTime appends sec as an RFC 3339 UTC time with second precision
// (2024-03-01T12:34:56Z).
func (g *Generator) appendTime(dst []byte, sec int64) []byte {
	day := sec / 86400
	if day != g.day {
		g.day = day
		y, m, d := civil(day)
		g.date = g.date[:0]
		g.date = appendPad(g.date, y, 4)
		g.date = append(g.date, '-')
		g.date = appendPad(g.date, m, 2)
		g.date = append(g.date, '-')
		g.date = appendPad(g.date, d, 2)
		g.date = append(g.date, 'T')
	}
	dst = append(dst, g.date...)
	s := sec % 86400
	dst = appendPad(dst, s/3600, 2)
	dst = append(dst, ':')
	dst = appendPad(dst, s/60%60, 2)
	dst = append(dst, ':')
	dst = appendPad(dst, s%60, 2)
	return append(dst, 'Z')
}

func appendPad(dst []byte, v int64, width int) []byte {
	var b [20]byte
	s := strconv.AppendInt(b[:0], v, 10)
	for i := len(s); i < width; i++ {
		dst = append(dst, '0')
	}
	return append(dst, s...)
}

// civil converts days since 1970-01-01 to a proleptic Gregorian date.
func civil(days int64) (year, month, day int64) {
	z := days + 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d := doy - (153*mp+2)/5 + 1
	m := mp + 3
	if m > 12 {
		m -= 12
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}
