// Command primes is a taskwire worker with a kind of its own, "primes", written
// only against the public worker SDK: it counts the primes below a limit with a
// segmented sieve, reporting each segment as progress, the count per segment on
// the stream "counts" (a chart in the web app), the largest prime so far as
// metadata, and the totals as a JSON result.
//
// It reads the same environment variables as taskwire-worker (REDIS_URL,
// TASKWIRE_PREFIX, ...). Run it next to a taskwire server, then start a task:
//
//	curl -X POST localhost:8080/api/v1/tasks -H 'Content-Type: application/json' \
//	  -H "Authorization: Bearer $TOKEN" -d '{"kind":"primes","params":{"limit":5000000}}'
package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/taskwire/taskwire/worker"
)

// Params are the parameters of a "primes" task.
type Params struct {
	Limit    int64 `json:"limit" jsonschema:"minimum=100,maximum=200000000,default=20000000,title=Limit,description=Count the primes below this number"`
	Segments int   `json:"segments" jsonschema:"minimum=1,maximum=1000,default=100,title=Segments,description=How many pieces the range is sieved in (one progress step each)"`
}

// Count is one item of the stream "counts".
type Count struct {
	Segment int   `json:"segment"`
	Primes  int64 `json:"primes"`
}

// Result is the task's result.
type Result struct {
	Limit   int64 `json:"limit"`
	Count   int64 `json:"count"`
	Largest int64 `json:"largest"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	w, err := worker.New(worker.OptionsFromEnv())
	if err != nil {
		fmt.Fprintln(os.Stderr, "primes:", err)
		os.Exit(2)
	}
	var pace time.Duration
	if s := os.Getenv("PRIMES_SEGMENT_DELAY"); s != "" {
		if pace, err = time.ParseDuration(s); err != nil || pace < 0 || pace > time.Second {
			fmt.Fprintln(os.Stderr, "primes: PRIMES_SEGMENT_DELAY: want a duration between 0 and 1s")
			os.Exit(2)
		}
	}
	worker.Handle(w, "primes", func(ctx context.Context, t *worker.Task, p Params) (*worker.Result, error) {
		return count(ctx, t, p, pace)
	},
		worker.Title("Prime count"),
		worker.Description("Counts the primes below a limit with a segmented sieve (an example kind of the worker SDK)."),
		worker.Timeout(10*time.Minute),
	)
	if err := w.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "primes:", err)
		os.Exit(1)
	}
}

// count sieves [2, p.Limit) in p.Segments pieces.
func count(ctx context.Context, t *worker.Task, p Params, pace time.Duration) (*worker.Result, error) {
	if err := t.Stage(ctx, "base", "Sieving the base primes"); err != nil {
		return nil, err
	}
	base := smallPrimes(int64(math.Sqrt(float64(p.Limit))) + 1)
	if err := t.Stage(ctx, "sieve", fmt.Sprintf("Sieving below %d in %d segments", p.Limit, p.Segments)); err != nil {
		return nil, err
	}
	res := Result{Limit: p.Limit}
	size := (p.Limit + int64(p.Segments) - 1) / int64(p.Segments)
	for s := range p.Segments {
		lo, hi := int64(s)*size, min(int64(s+1)*size, p.Limit)
		n, largest := segment(lo, hi, base)
		res.Count += n
		if largest > 0 {
			res.Largest = largest
		}
		if err := t.Append(ctx, "counts", Count{Segment: s + 1, Primes: n}); err != nil {
			return nil, err
		}
		if err := t.SetMetadata(ctx, map[string]any{"largest": res.Largest, "count": res.Count}); err != nil {
			return nil, err
		}
		if err := t.Progress(ctx, int64(s+1), int64(p.Segments)); err != nil {
			return nil, err
		}
		if pace > 0 {
			select {
			case <-ctx.Done():
				return nil, context.Cause(ctx)
			case <-time.After(pace):
			}
		}
	}
	return worker.JSONResult(res), nil
}

// smallPrimes returns the primes below n.
func smallPrimes(n int64) []int64 {
	composite := make([]bool, n)
	var out []int64
	for i := int64(2); i < n; i++ {
		if composite[i] {
			continue
		}
		out = append(out, i)
		for j := i * i; j < n; j += i {
			composite[j] = true
		}
	}
	return out
}

// segment counts the primes in [lo, hi) and returns the largest one (0: none).
func segment(lo, hi int64, base []int64) (count, largest int64) {
	lo = max(lo, 2)
	if hi <= lo {
		return 0, 0
	}
	composite := make([]bool, hi-lo)
	for _, q := range base {
		if q*q >= hi {
			break
		}
		start := max(q*q, (lo+q-1)/q*q)
		for j := start; j < hi; j += q {
			composite[j-lo] = true
		}
	}
	for i, c := range composite {
		if !c {
			count++
			largest = lo + int64(i)
		}
	}
	return count, largest
}
