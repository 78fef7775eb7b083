package report

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"
)

var created = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func defaults() Params {
	return Params{Countries: DefaultCountries, RowsPerCountry: DefaultRows, Title: DefaultTitle}
}

var (
	pageObj  = regexp.MustCompile(`/Type /Page[^s]`)
	pagesCnt = regexp.MustCompile(`/Type /Pages\s*/Kids \[[^\]]*\]\s*/Count (\d+)`)
)

// checkPDF checks that b looks like a complete PDF of pages pages: the header,
// the trailer, and as many page objects as the page tree counts.
func checkPDF(t *testing.T, b []byte, pages int) {
	t.Helper()
	if !bytes.HasPrefix(b, []byte("%PDF-1.")) {
		t.Fatalf("no PDF header: %q", b[:min(len(b), 16)])
	}
	if !bytes.HasSuffix(bytes.TrimSpace(b), []byte("%%EOF")) {
		t.Fatalf("no PDF trailer: %q", b[max(0, len(b)-16):])
	}
	if !bytes.Contains(b, []byte("startxref")) || !bytes.Contains(b, []byte("/Root ")) {
		t.Fatal("no cross-reference table or catalog")
	}
	if n := len(pageObj.FindAll(b, -1)); n != pages {
		t.Fatalf("%d page objects, want %d", n, pages)
	}
	m := pagesCnt.FindSubmatch(b)
	if m == nil {
		t.Fatal("no page tree")
	}
	if n, _ := strconv.Atoi(string(m[1])); n != pages {
		t.Fatalf("the page tree counts %d pages, want %d", n, pages)
	}
}

func build(t *testing.T, p Params, seed string) ([]byte, *Summary) {
	t.Helper()
	var buf bytes.Buffer
	sum, err := Build(context.Background(), p, BuildOptions{Seed: seed, Created: created}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Bytes != int64(buf.Len()) {
		t.Fatalf("summary says %d bytes, wrote %d", sum.Bytes, buf.Len())
	}
	return buf.Bytes(), sum
}

func TestBuildDefaults(t *testing.T) {
	p := defaults()
	b, sum := build(t, p, "seed-1")
	if sum.Pages != 6 || p.Pages() != 6 {
		t.Fatalf("pages %d (plan %d), want 6: cover, chart, 4 of table", sum.Pages, p.Pages())
	}
	if sum.Rows != 24000 {
		t.Fatalf("rows %d, want 24000", sum.Rows)
	}
	checkPDF(t, b, 6)
	// The size of the default report: compressed pages of vector graphics and
	// text, no images or embedded fonts.
	if len(b) < 8<<10 || len(b) > 120<<10 {
		t.Fatalf("default report is %d bytes, want 8-120 KiB", len(b))
	}
	for _, s := range []string{"/Title (", "/Creator (", "/CreationDate (D:20260102030405", "/BaseFont /Helvetica"} {
		if !bytes.Contains(b, []byte(s)) {
			t.Errorf("no %q in the PDF", s)
		}
	}
}

func TestPagesFollowCountries(t *testing.T) {
	for _, tc := range []struct{ countries, pages int }{{1, 3}, {3, 3}, {4, 4}, {12, 6}, {50, 17}} {
		t.Run(strconv.Itoa(tc.countries), func(t *testing.T) {
			p := Params{Countries: tc.countries, RowsPerCountry: MinRowsPerCountry}
			if p.Pages() != tc.pages {
				t.Fatalf("plan of %d countries: %d pages, want %d", tc.countries, p.Pages(), tc.pages)
			}
			b, sum := build(t, p, "pages")
			if sum.Pages != tc.pages {
				t.Fatalf("drew %d pages, want %d", sum.Pages, tc.pages)
			}
			checkPDF(t, b, tc.pages)
		})
	}
}

func TestDeterministic(t *testing.T) {
	p := defaults()
	a, _ := build(t, p, "same")
	b, _ := build(t, p, "same")
	if !bytes.Equal(a, b) {
		t.Fatal("one seed made two different PDFs")
	}
	c, _ := build(t, p, "other")
	if bytes.Equal(a, c) {
		t.Fatal("two seeds made the same PDF")
	}
	// The layout does not depend on the data: sizes stay close.
	if d := len(a) - len(c); d > len(a)/10 || -d > len(a)/10 {
		t.Fatalf("sizes %d and %d differ by more than 10%%", len(a), len(c))
	}
}

func TestQueryAggregates(t *testing.T) {
	p := Params{Countries: 5, RowsPerCountry: 1000}
	ds, err := Query(context.Background(), p, "agg", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Countries) != 5 || ds.Orders != 5000 {
		t.Fatalf("%d countries, %d orders", len(ds.Countries), ds.Orders)
	}
	rev := 0.0
	for _, c := range ds.Countries {
		var n int64
		largest := 0.0
		for _, m := range c.Months {
			n += m.Orders
			largest = max(largest, m.Largest)
		}
		if n != 1000 || c.Orders != 1000 || largest != c.Largest || c.Largest > 25000 {
			t.Fatalf("%s: %d orders in months, %d in all, largest %v/%v", c.Code, n, c.Orders, largest, c.Largest)
		}
		if avg := c.Average(); avg < 5 || avg > 500 {
			t.Fatalf("%s: average order %.2f", c.Code, avg)
		}
		rev += c.Revenue
	}
	if d := rev - ds.Revenue; d > 1e-6*rev || -d > 1e-6*rev {
		t.Fatalf("revenue %v, sum of countries %v", ds.Revenue, rev)
	}
	top := ds.ByRevenue()
	for i := 1; i < len(top); i++ {
		if top[i].Revenue > top[i-1].Revenue {
			t.Fatal("ByRevenue is not sorted")
		}
	}
}

func TestStagesAndProgress(t *testing.T) {
	p := Params{Countries: 4, RowsPerCountry: 100, Title: "Quarterly — Überblick ✓"}
	var stages []string
	var last, total int64
	calls := 0
	var buf bytes.Buffer
	sum, err := Build(context.Background(), p, BuildOptions{
		Seed: "hooks", Created: created,
		Stage: func(_ context.Context, id, msg string) error {
			if msg == "" {
				t.Errorf("stage %s without a message", id)
			}
			stages = append(stages, id)
			return nil
		},
		Progress: func(_ context.Context, done, tot int64) error {
			if done <= last || done > tot {
				t.Errorf("progress %d/%d after %d", done, tot, last)
			}
			last, total = done, tot
			calls++
			return nil
		},
	}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(stages) != "[query render store]" {
		t.Fatalf("stages %v", stages)
	}
	want := int64(p.Countries + sum.Pages + 1)
	if total != want || last != total || calls != int(want) {
		t.Fatalf("last progress %d/%d after %d calls, want %d/%d", last, total, calls, want, want)
	}
	checkPDF(t, buf.Bytes(), sum.Pages)
}

func TestCancel(t *testing.T) {
	for _, at := range []int64{1, 6} { // during the query, during the rendering
		t.Run(strconv.FormatInt(at, 10), func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			stop := errors.New("stopped by the test")
			var calls int64
			var buf bytes.Buffer
			_, err := Build(ctx, Params{Countries: 12, RowsPerCountry: 100}, BuildOptions{
				Progress: func(context.Context, int64, int64) error {
					calls++
					if calls == at {
						cancel(stop)
					}
					return nil
				},
			}, &buf)
			if !errors.Is(err, stop) {
				t.Fatalf("err %v, want the cause of the cancel", err)
			}
			if calls != at || buf.Len() != 0 {
				t.Fatalf("%d progress calls and %d bytes after a cancel at %d", calls, buf.Len(), at)
			}
		})
	}
}

func TestCancelInterruptsQueryAndPace(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Query(ctx, Params{Countries: 1, RowsPerCountry: MaxRowsPerCountry}, "x", nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("query on a done context: %v", err)
	}

	// A pace far longer than the test may take: only the cancel ends it.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := Build(ctx, defaults(), BuildOptions{Pace: time.Hour, Stage: func(context.Context, string, string) error {
			cancel()
			return nil
		}}, &bytes.Buffer{})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Build did not stop on cancel while pacing")
	}
}

func TestHookErrorStops(t *testing.T) {
	boom := errors.New("boom")
	_, err := Build(context.Background(), defaults(), BuildOptions{Stage: func(_ context.Context, id, _ string) error {
		if id == StageRender {
			return boom
		}
		return nil
	}}, &bytes.Buffer{})
	if !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
}

func TestInvalidParams(t *testing.T) {
	long := string(bytes.Repeat([]byte("é"), MaxTitleLength+1))
	for _, p := range []Params{
		{Countries: 0, RowsPerCountry: 100},
		{Countries: 51, RowsPerCountry: 100},
		{Countries: 1, RowsPerCountry: 9},
		{Countries: 1, RowsPerCountry: 100_001},
		{Countries: 1, RowsPerCountry: 100, Title: long},
	} {
		if _, err := Build(context.Background(), p, BuildOptions{}, &bytes.Buffer{}); !errors.Is(err, ErrInvalidParams) {
			t.Errorf("%+v: err %v", p, err)
		}
	}
	ok := Params{Countries: 1, RowsPerCountry: 10, Title: string(bytes.Repeat([]byte("é"), MaxTitleLength))}
	if err := ok.Validate(); err != nil {
		t.Fatalf("80 characters: %v", err)
	}
}

func TestFormats(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{groupInt(0), "0"}, {groupInt(999), "999"}, {groupInt(1000), "1,000"}, {groupInt(-1234567), "-1,234,567"},
		{money(1234.5), "1,234.50"}, {money(0.004), "0.00"}, {money(12.345), "12.35"},
		{compact(950), "950"}, {compact(1500), "1.5k"}, {compact(125000), "125k"}, {compact(3.25e6), "3.2M"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	for _, tc := range []struct{ in, want float64 }{{0.3, 0.5}, {3, 5}, {7, 10}, {12, 20}, {100, 100}, {0, 1}} {
		if got := niceStep(tc.in); got != tc.want {
			t.Errorf("niceStep(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func BenchmarkBuildDefaults(b *testing.B) {
	p := defaults()
	for b.Loop() {
		var buf bytes.Buffer
		if _, err := Build(context.Background(), p, BuildOptions{Seed: "bench", Created: created}, &buf); err != nil {
			b.Fatal(err)
		}
	}
}
