// Command gofeed is the benchmark's event source for taskwire: it publishes events
// with taskwire's emitter (github.com/taskwire/taskwire/emitter), paced like the
// Node feed (bench/node/feed.mjs) that drives the Node reference with
// @socket.io/redis-emitter. Both read the same commands, one JSON object a line on
// stdin, and answer with one JSON object a line on stdout:
//
//	{"cmd":"emit","id":1,"rooms":["user:a","user:b"],"perRoom":20,"rate":2000}
//	  -> {"type":"done","id":1,"calls":40,"ms":19.5,"maxLagMs":0.3}
//
// "emit" makes perRoom rounds over rooms ("" is everyone, no room); in each round
// every room gets one event "bench" with {taskId, seq, percent, done, total,
// stage, t}, where seq is the round (0-based) and t the wall-clock time of the
// call in milliseconds (a float), from which clients compute the delivery
// latency. Calls are paced at rate per
// second (0: as fast as they go); maxLagMs says how far behind schedule the feed
// fell.
//
// Emitter throughput alone (rooms per call, batching, pipelining) is measured
// by bench/emitter.
//
// REDIS_URL is required. It exits at the end of its input.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/emitter"
)

type command struct {
	Cmd     string   `json:"cmd"`
	ID      int      `json:"id"`
	Rooms   []string `json:"rooms"`
	PerRoom int      `json:"perRoom"`
	Rate    float64  `json:"rate"`
}

type reply struct {
	Type     string  `json:"type"`
	ID       int     `json:"id"`
	Calls    int     `json:"calls,omitempty"`
	Ms       float64 `json:"ms,omitempty"`
	MaxLagMs float64 `json:"maxLagMs,omitempty"`
	Error    string  `json:"error,omitempty"`
}

// progress is the payload of every event, shaped like a task:progress event.
type progress struct {
	TaskID  string  `json:"taskId"`
	Seq     int     `json:"seq"`
	Percent float64 `json:"percent"`
	Done    int     `json:"done"`
	Total   int     `json:"total"`
	Stage   string  `json:"stage"`
	T       float64 `json:"t"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gofeed:", err)
		os.Exit(1)
	}
}

func run() error {
	url := os.Getenv("REDIS_URL")
	if url == "" {
		return errors.New("REDIS_URL is not set")
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		return fmt.Errorf("REDIS_URL: %w", err)
	}
	opts.PoolSize = 64
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ctx := context.Background()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	em := emitter.New(rdb, nil)

	enc := json.NewEncoder(os.Stdout)
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 0, 1<<20), 256<<20)
	fmt.Println(`{"type":"ready"}`)
	for in.Scan() {
		var c command
		if err := json.Unmarshal(in.Bytes(), &c); err != nil {
			_ = enc.Encode(reply{Type: "error", Error: err.Error()})
			continue
		}
		var r reply
		switch c.Cmd {
		case "emit":
			r, err = emit(ctx, em, &c)
		default:
			err = fmt.Errorf("unknown command %q", c.Cmd)
		}
		r.ID = c.ID
		if err != nil {
			r.Type, r.Error = "error", err.Error()
		} else {
			r.Type = "done"
		}
		_ = enc.Encode(r)
	}
	return in.Err()
}

func nowMs() float64 { return float64(time.Now().UnixNano()) / 1e6 }

func emit(ctx context.Context, em *emitter.Emitter, c *command) (reply, error) {
	start := time.Now()
	total := len(c.Rooms) * c.PerRoom
	var maxLag time.Duration
	i := 0
	for seq := range c.PerRoom {
		for _, room := range c.Rooms {
			if c.Rate > 0 {
				due := start.Add(time.Duration(float64(i) / c.Rate * float64(time.Second)))
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				} else if -d > maxLag {
					maxLag = -d
				}
			}
			p := progress{TaskID: "bench", Seq: seq, Percent: float64(seq+1) * 100 / float64(c.PerRoom),
				Done: seq + 1, Total: c.PerRoom, Stage: "rows", T: nowMs()}
			var err error
			if room == "" {
				err = em.Emit(ctx, "bench", p)
			} else {
				err = em.To(room).Emit(ctx, "bench", p)
			}
			if err != nil {
				return reply{}, fmt.Errorf("emit %d of %d: %w", i+1, total, err)
			}
			i++
		}
	}
	return reply{Calls: total, Ms: ms(time.Since(start)), MaxLagMs: ms(maxLag)}, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
