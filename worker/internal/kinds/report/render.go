package report

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"codeberg.org/go-pdf/fpdf"
)

// Page layout, in millimetres (A4 portrait).
const (
	pageW, pageH   = 210.0, 297.0
	margin         = 15.0
	contentW       = pageW - 2*margin
	footerY        = pageH - 12
	tableTop       = 30.0
	tableRowH      = 5.5
	tableBottom    = footerY - 6
	tableHeaderH   = 7.0
	tableRowsStart = tableTop + tableHeaderH
)

// tableRowsPerPage is how many body lines of the table fit on one page.
const tableRowsPerPage = int((tableBottom - tableRowsStart) / tableRowH)

var monthNames = [12]string{"January", "February", "March", "April", "May", "June",
	"July", "August", "September", "October", "November", "December"}

// palette colours the bars of the chart.
var palette = [][3]int{
	{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}, {148, 103, 189},
	{140, 86, 75}, {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207},
}

// table columns: header, width, alignment.
var columns = []struct {
	head  string
	w     float64
	align string
}{
	{"Country", 50, "L"}, {"Month", 26, "L"}, {"Orders", 22, "R"},
	{"Revenue (USD)", 30, "R"}, {"Average (USD)", 26, "R"}, {"Largest (USD)", 26, "R"},
}

// renderer draws one report.
type renderer struct {
	pdf   *fpdf.Fpdf
	tr    func(string) string
	ds    *Dataset
	title string
	pages int
}

// Render draws the report of ds as a PDF and writes it to w: a cover with the
// key figures and the top countries, a bar chart of the revenue by country
// drawn with vector primitives, and a table of every country's months that
// spans as many pages as it needs, its header repeated on each. created is the
// document's creation date (fixed, so that one dataset always makes the same
// bytes). step, when not nil, is called after each page with the pages done
// and the total; its error stops the rendering. Render returns the number of
// pages.
func Render(ctx context.Context, ds *Dataset, created time.Time, w io.Writer, step func(ctx context.Context, page, pages int) error) (int, error) {
	title := ds.Title
	if strings.TrimSpace(title) == "" {
		title = DefaultTitle
	}
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetCompression(true)
	pdf.SetCatalogSort(true)
	pdf.SetCreationDate(created.UTC())
	pdf.SetModificationDate(created.UTC())
	pdf.SetTitle(title, true)
	pdf.SetSubject("Orders by country and month", true)
	pdf.SetCreator("taskwire report", true)
	pdf.SetProducer("taskwire", true)
	pdf.SetMargins(margin, margin, margin)
	pdf.SetAutoPageBreak(false, 0)
	r := &renderer{pdf: pdf, tr: pdf.UnicodeTranslatorFromDescriptor(""), ds: ds, title: title,
		pages: Params{Countries: len(ds.Countries)}.Pages()}

	page := 0
	next := func(draw func()) error {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		pdf.AddPage()
		page++
		draw()
		r.footer(page)
		if err := pdf.Error(); err != nil {
			return fmt.Errorf("report: drawing page %d: %w", page, err)
		}
		if step != nil {
			return step(ctx, page, r.pages)
		}
		return nil
	}
	if err := next(r.cover); err != nil {
		return 0, err
	}
	if err := next(r.chart); err != nil {
		return 0, err
	}
	lines := r.tableLines()
	for start := 0; start < len(lines); start += tableRowsPerPage {
		chunk := lines[start:min(start+tableRowsPerPage, len(lines))]
		if err := next(func() { r.table(chunk) }); err != nil {
			return 0, err
		}
	}
	if page != r.pages {
		return 0, fmt.Errorf("report: drew %d pages, planned %d", page, r.pages)
	}
	if err := ctx.Err(); err != nil {
		return 0, context.Cause(ctx)
	}
	if err := pdf.Output(w); err != nil {
		return 0, fmt.Errorf("report: writing the PDF: %w", err)
	}
	return page, nil
}

func (r *renderer) text(s string) string { return r.tr(s) }

// footer draws the title and the page number at the foot of the page.
func (r *renderer) footer(page int) {
	p := r.pdf
	p.SetDrawColor(200, 200, 200)
	p.SetLineWidth(0.2)
	p.Line(margin, footerY-2, pageW-margin, footerY-2)
	p.SetFont("Helvetica", "", 8)
	p.SetTextColor(110, 110, 110)
	num := fmt.Sprintf("Page %d of %d", page, r.pages)
	p.SetXY(margin, footerY)
	p.CellFormat(contentW-30, 4, r.fit(r.title, contentW-32), "", 0, "L", false, 0, "")
	p.CellFormat(30, 4, num, "", 0, "R", false, 0, "")
}

// fit returns s cut (with an ellipsis) to fit width w in the current font.
func (r *renderer) fit(s string, w float64) string {
	t := r.text(s)
	if r.pdf.GetStringWidth(t) <= w {
		return t
	}
	for len(t) > 0 && r.pdf.GetStringWidth(t+"...") > w {
		t = t[:len(t)-1]
	}
	return t + "..."
}

// heading draws the title of a page.
func (r *renderer) heading(s, sub string) {
	p := r.pdf
	p.SetXY(margin, 14)
	p.SetFont("Helvetica", "B", 15)
	p.SetTextColor(30, 30, 30)
	p.CellFormat(contentW, 7, r.text(s), "", 1, "L", false, 0, "")
	p.SetFont("Helvetica", "", 9)
	p.SetTextColor(110, 110, 110)
	p.CellFormat(contentW, 5, r.text(sub), "", 1, "L", false, 0, "")
}

// cover draws page 1: the title, the key figures and the top countries.
func (r *renderer) cover() {
	p, ds := r.pdf, r.ds
	p.SetFillColor(31, 119, 180)
	p.Rect(0, 0, pageW, 8, "F")
	p.SetXY(margin, 34)
	p.SetFont("Helvetica", "B", 24)
	p.SetTextColor(20, 20, 20)
	p.MultiCell(contentW, 10, r.text(r.title), "", "L", false)
	p.Ln(2)
	p.SetFont("Helvetica", "", 12)
	p.SetTextColor(90, 90, 90)
	p.CellFormat(contentW, 6, fmt.Sprintf("Orders by country and month, January to December %d", ds.Year), "", 1, "L", false, 0, "")
	p.SetFont("Helvetica", "", 9)
	p.CellFormat(contentW, 5, r.fit("Dataset "+ds.Seed+" (generated orders, amounts in US dollars)", contentW), "", 1, "L", false, 0, "")

	// Key figures.
	y := p.GetY() + 10
	figures := []struct{ label, value string }{
		{"Orders", groupInt(ds.Orders)},
		{"Revenue (USD)", groupInt(int64(math.Round(ds.Revenue)))},
		{"Countries", strconv.Itoa(len(ds.Countries))},
		{"Average order (USD)", money(safeDiv(ds.Revenue, float64(ds.Orders)))},
	}
	boxW := (contentW - 3*4) / 4
	for i, f := range figures {
		x := margin + float64(i)*(boxW+4)
		p.SetFillColor(238, 244, 250)
		p.Rect(x, y, boxW, 22, "F")
		p.SetFillColor(31, 119, 180)
		p.Rect(x, y, 1.2, 22, "F")
		p.SetXY(x+4, y+3)
		p.SetFont("Helvetica", "", 8)
		p.SetTextColor(90, 90, 90)
		p.CellFormat(boxW-6, 5, f.label, "", 2, "L", false, 0, "")
		p.SetFont("Helvetica", "B", 13)
		p.SetTextColor(20, 20, 20)
		p.CellFormat(boxW-6, 9, f.value, "", 0, "L", false, 0, "")
	}

	// Top countries, with a bar of their share.
	y += 34
	p.SetXY(margin, y)
	p.SetFont("Helvetica", "B", 12)
	p.SetTextColor(30, 30, 30)
	p.CellFormat(contentW, 7, "Top countries by revenue", "", 1, "L", false, 0, "")
	top := ds.ByRevenue()
	top = top[:min(10, len(top))]
	p.SetFont("Helvetica", "", 9)
	for i, c := range top {
		y := p.GetY() + 1
		share := safeDiv(c.Revenue, ds.Revenue)
		p.SetXY(margin, y)
		p.SetTextColor(40, 40, 40)
		p.CellFormat(8, 6, strconv.Itoa(i+1)+".", "", 0, "R", false, 0, "")
		p.CellFormat(52, 6, r.fit(c.Name, 50), "", 0, "L", false, 0, "")
		p.CellFormat(30, 6, groupInt(c.Orders)+" orders", "", 0, "R", false, 0, "")
		p.CellFormat(32, 6, groupInt(int64(math.Round(c.Revenue))), "", 0, "R", false, 0, "")
		bx := margin + 126
		p.SetFillColor(225, 225, 225)
		p.Rect(bx, y+1.5, 40, 3, "F")
		col := palette[i%len(palette)]
		p.SetFillColor(col[0], col[1], col[2])
		p.Rect(bx, y+1.5, max(40*share, 0.3), 3, "F")
		p.SetXY(bx+41, y)
		p.CellFormat(13, 6, fmt.Sprintf("%.1f%%", 100*share), "", 1, "R", false, 0, "")
	}

	p.SetXY(margin, p.GetY()+10)
	p.SetFont("Helvetica", "", 9)
	p.SetTextColor(90, 90, 90)
	p.MultiCell(contentW, 5, fmt.Sprintf("Page 2 charts the revenue of every country. Pages 3 to %d list "+
		"each country's orders month by month, with its total, and the grand total at the end.", r.pages), "", "L", false)
}

// chart draws page 2: a horizontal bar chart of the revenue by country.
func (r *renderer) chart() {
	p, ds := r.pdf, r.ds
	r.heading("Revenue by country", fmt.Sprintf("US dollars, %d, %s orders in all", ds.Year, groupInt(ds.Orders)))
	rows := ds.ByRevenue()
	const labelW, valueW = 38.0, 22.0
	x0 := margin + labelW
	plotW := contentW - labelW - valueW
	top, bottom := 34.0, footerY-14
	slot := math.Min(12, (bottom-top)/float64(len(rows)))
	barH := slot * 0.7
	maxRev := 0.0
	for _, c := range rows {
		maxRev = math.Max(maxRev, c.Revenue)
	}
	step := niceStep(maxRev / 5)
	axisMax := math.Max(step, math.Ceil(maxRev/step)*step)
	scale := plotW / axisMax
	plotBottom := top + slot*float64(len(rows))

	// Grid and ticks.
	p.SetLineWidth(0.15)
	p.SetFont("Helvetica", "", 7)
	p.SetTextColor(110, 110, 110)
	for v := 0.0; v <= axisMax+step/2; v += step {
		x := x0 + v*scale
		p.SetDrawColor(220, 220, 220)
		p.Line(x, top-1, x, plotBottom)
		p.SetXY(x-12, plotBottom+1)
		p.CellFormat(24, 4, compact(v), "", 0, "C", false, 0, "")
	}
	p.SetDrawColor(80, 80, 80)
	p.SetLineWidth(0.3)
	p.Line(x0, top-1, x0, plotBottom)
	p.Line(x0, plotBottom, x0+plotW, plotBottom)

	// Bars.
	fontSize := math.Min(8, math.Max(5, slot*1.4))
	for i, c := range rows {
		y := top + float64(i)*slot + (slot-barH)/2
		col := palette[i%len(palette)]
		p.SetFillColor(col[0], col[1], col[2])
		p.Rect(x0, y, math.Max(c.Revenue*scale, 0.2), barH, "F")
		p.SetFont("Helvetica", "", fontSize)
		p.SetTextColor(40, 40, 40)
		p.SetXY(margin, y)
		p.CellFormat(labelW-2, barH, r.fit(c.Name, labelW-3), "", 0, "R", false, 0, "")
		p.SetXY(x0+c.Revenue*scale+1, y)
		p.CellFormat(valueW, barH, compact(c.Revenue), "", 0, "L", false, 0, "")
	}
	p.SetFont("Helvetica", "", 7)
	p.SetTextColor(110, 110, 110)
	p.SetXY(x0, plotBottom+6)
	p.CellFormat(plotW, 4, "Revenue (USD)", "", 0, "C", false, 0, "")
}

// line is one body line of the table.
type line struct {
	country, month     string
	orders             int64
	revenue, avg, larg float64
	kind               int // lineMonth, lineTotal or lineGrand
	first              bool
}

const (
	lineMonth = iota
	lineTotal
	lineGrand
)

// tableLines returns the body lines of the table.
func (r *renderer) tableLines() []line {
	out := make([]line, 0, tableLines(len(r.ds.Countries)))
	largest := 0.0
	for ci := range r.ds.Countries {
		c := &r.ds.Countries[ci]
		for m, mo := range c.Months {
			out = append(out, line{country: c.Name, month: monthNames[m], orders: mo.Orders, revenue: mo.Revenue,
				avg: safeDiv(mo.Revenue, float64(mo.Orders)), larg: mo.Largest, kind: lineMonth, first: m == 0})
		}
		out = append(out, line{country: c.Name, month: "Total", orders: c.Orders, revenue: c.Revenue,
			avg: c.Average(), larg: c.Largest, kind: lineTotal})
		largest = math.Max(largest, c.Largest)
	}
	return append(out, line{country: "All countries", month: "Total", orders: r.ds.Orders, revenue: r.ds.Revenue,
		avg: safeDiv(r.ds.Revenue, float64(r.ds.Orders)), larg: largest, kind: lineGrand})
}

// table draws one page of the table: the header, then lines.
func (r *renderer) table(lines []line) {
	p := r.pdf
	r.heading("Orders by country and month", fmt.Sprintf("%d, amounts in US dollars", r.ds.Year))
	p.SetXY(margin, tableTop)
	p.SetFont("Helvetica", "B", 8.5)
	p.SetFillColor(40, 62, 90)
	p.SetTextColor(255, 255, 255)
	p.SetDrawColor(40, 62, 90)
	for _, c := range columns {
		p.CellFormat(c.w, tableHeaderH, c.head, "", 0, c.align, true, 0, "")
	}
	p.Ln(-1)
	p.SetDrawColor(215, 215, 215)
	p.SetLineWidth(0.1)
	for i, l := range lines {
		y := tableRowsStart + float64(i)*tableRowH
		p.SetXY(margin, y)
		name := ""
		if l.first || i == 0 || l.kind != lineMonth {
			name = l.country
			if !l.first && l.kind == lineMonth {
				name += " (cont.)"
			}
		}
		fill := false
		switch l.kind {
		case lineMonth:
			p.SetFont("Helvetica", "", 8)
			p.SetTextColor(40, 40, 40)
			if i%2 == 1 {
				p.SetFillColor(246, 246, 246)
				fill = true
			}
		case lineTotal:
			p.SetFont("Helvetica", "B", 8)
			p.SetTextColor(20, 20, 20)
			p.SetFillColor(226, 236, 246)
			fill = true
		case lineGrand:
			p.SetFont("Helvetica", "B", 8.5)
			p.SetTextColor(255, 255, 255)
			p.SetFillColor(40, 62, 90)
			fill = true
		}
		cells := []string{r.fit(name, columns[0].w-2), l.month, groupInt(l.orders),
			money(l.revenue), money(l.avg), money(l.larg)}
		for j, c := range columns {
			p.CellFormat(c.w, tableRowH, cells[j], "B", 0, c.align, fill, 0, "")
		}
	}
}

// niceStep rounds v up to 1, 2 or 5 times a power of ten.
func niceStep(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	pow := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*pow >= v {
			return m * pow
		}
	}
	return 10 * pow
}

// compact formats an amount for an axis: 950, 12.5k, 3.2M.
func compact(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 1, 64) + "M"
	case a >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', 0, 64) + "k"
	case a >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// groupInt formats n with thousands separators: 1,234,567.
func groupInt(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// money formats an amount with cents and thousands separators: 12,345.67.
func money(v float64) string {
	cents := int64(math.Round(v * 100))
	c := cents % 100
	if c < 0 {
		c = -c
	}
	return groupInt(cents/100) + "." + strconv.FormatInt(c/10, 10) + strconv.FormatInt(c%10, 10)
}

func safeDiv(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
