package export

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
)

func generate(t *testing.T, id string, rows int) []byte {
	t.Helper()
	var b bytes.Buffer
	n, err := Write(context.Background(), &b, id, rows, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(b.Len()) {
		t.Fatalf("Write returned %d bytes, wrote %d", n, b.Len())
	}
	return b.Bytes()
}

func TestCSVShape(t *testing.T) {
	for _, rows := range []int{1, 255, 256, 257, 5000} {
		out := generate(t, "AAAAAAAAAAAAAAAAAAAAAA", rows)
		recs, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
		if err != nil {
			t.Fatalf("%d rows: not valid CSV: %v", rows, err)
		}
		if len(recs) != rows+1 {
			t.Fatalf("%d rows: got %d records (with header)", rows, len(recs))
		}
		if strings.Join(recs[0], ",") != strings.Join(Columns, ",") || string(out[:len(Header)]) != Header {
			t.Fatalf("header %v", recs[0])
		}
		var lastID int64
		var lastTime time.Time
		for i, r := range recs[1:] {
			if len(r) != 6 {
				t.Fatalf("row %d: %d fields", i, len(r))
			}
			id, err := strconv.ParseInt(strings.TrimPrefix(r[0], "ORD-"), 10, 64)
			if err != nil || !strings.HasPrefix(r[0], "ORD-") || id <= lastID {
				t.Fatalf("row %d: id %q not increasing", i, r[0])
			}
			lastID = id
			if !strings.Contains(r[1], " ") || len(r[2]) != 2 || len(r[4]) != 3 {
				t.Fatalf("row %d: %v", i, r)
			}
			amount, err := strconv.ParseFloat(r[3], 64)
			if err != nil || amount <= 0 {
				t.Fatalf("row %d: amount %q", i, r[3])
			}
			if (r[4] == "JPY") == strings.Contains(r[3], ".") {
				t.Fatalf("row %d: %s amount %q has the wrong decimals", i, r[4], r[3])
			}
			ts, err := time.Parse(time.RFC3339, r[5])
			if err != nil || ts.Before(lastTime) || ts.Year() < 2024 || ts.Year() > 2026 {
				t.Fatalf("row %d: created_at %q", i, r[5])
			}
			lastTime = ts
		}
	}
}

func TestDeterministic(t *testing.T) {
	a := generate(t, "task-one_____________x", 3000)
	b := generate(t, "task-one_____________x", 3000)
	c := generate(t, "task-two_____________x", 3000)
	if !bytes.Equal(a, b) {
		t.Fatal("same task id, different files")
	}
	if bytes.Equal(a, c) {
		t.Fatal("different task ids, same file")
	}
	// A shorter export is a prefix of a longer one of the same task.
	short := generate(t, "task-one_____________x", 1000)
	if !bytes.HasPrefix(a, short) {
		t.Fatal("rows depend on the total")
	}
}

func TestCivil(t *testing.T) {
	for _, sec := range []int64{0, 951782400 /* 2000-02-29 */, epoch, 1735689599, 4102444800} {
		var g Generator
		g.day = -1
		got := string(g.appendTime(nil, sec))
		want := time.Unix(sec, 0).UTC().Format(time.RFC3339)
		if got != want {
			t.Fatalf("%d: %s, want %s", sec, got, want)
		}
	}
}

func TestProgressAndCancel(t *testing.T) {
	var seen []int64
	_, err := Write(context.Background(), io.Discard, "x", 1000, Options{Progress: func(_ context.Context, done int64) error {
		seen = append(seen, done)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 4 || seen[len(seen)-1] != 1000 {
		t.Fatalf("progress calls %v", seen)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] <= seen[i-1] {
			t.Fatalf("progress not increasing: %v", seen)
		}
	}

	// A progress error stops the export and comes back.
	stop := errors.New("stop")
	_, err = Write(context.Background(), io.Discard, "x", 100000, Options{Progress: func(context.Context, int64) error { return stop }})
	if !errors.Is(err, stop) {
		t.Fatalf("err %v, want stop", err)
	}

	// Cancellation ends a slow export during its delay with the cause.
	cause := errors.New("cancelled by owner")
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := Write(ctx, io.Discard, "x", 1000, Options{RowDelay: time.Second})
		done <- err
	}()
	cancel(cause)
	select {
	case err := <-done:
		if !errors.Is(err, cause) {
			t.Fatalf("err %v, want the cause", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a cancelled export did not stop within 5 s")
	}
}

func BenchmarkGenerate(b *testing.B) {
	g := NewGenerator("bench")
	buf := make([]byte, 0, 1<<16)
	var n int64
	for b.Loop() {
		buf = g.AppendRow(buf[:0])
		n += int64(len(buf))
	}
	b.SetBytes(n / int64(b.N))
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
