package store

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/redis/go-redis/v9"
)

// ChunkSize is the size of the pieces a result is stored in. Results are streamed in
// and out chunk by chunk, so neither side holds a whole file in memory.
const ChunkSize = 1 << 20

// tempResultTTL bounds how long a result that is being written (or whose writer
// died) stays in Redis.
const tempResultTTL = 6 * time.Hour

// ErrResultTooLarge is returned by ResultWriter.Write when the result would exceed
// the writer's limit.
var ErrResultTooLarge = errors.New("store: result exceeds the size limit")

// ResultWriter stores a task result in Redis as it is produced: the bytes are
// gzip-compressed and appended to a temporary key in ChunkSize pieces. Update with
// CommitResult moves it into place when the task completes; Abort discards it.
type ResultWriter struct {
	ctx     context.Context
	rdb     redis.UniversalClient
	key     string
	limit   int64
	written int64
	gz      *gzip.Writer
	buf     *bufio.Writer
	chunker chunker
	err     error
}

// NewResultWriter starts the result of attempt of task id. limit bounds the
// uncompressed size (0 = no limit). Any earlier content of the attempt's key is
// dropped.
func (s *Store) NewResultWriter(ctx context.Context, id string, attempt int, limit int64) (*ResultWriter, error) {
	key := s.keys.ResultTemp(id, attempt)
	if err := s.rdb.Del(ctx, key).Err(); err != nil {
		return nil, fmt.Errorf("store: result %s: %w", id, err)
	}
	w := &ResultWriter{ctx: ctx, rdb: s.rdb, key: key, limit: limit}
	w.chunker = chunker{flush: w.push}
	w.gz, _ = gzip.NewWriterLevel(&w.chunker, gzip.BestSpeed)
	w.buf = bufio.NewWriterSize(w.gz, 64<<10)
	return w, nil
}

// Write appends p to the result.
func (w *ResultWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.limit > 0 && w.written+int64(len(p)) > w.limit {
		w.err = ErrResultTooLarge
		return 0, w.err
	}
	n, err := w.buf.Write(p)
	w.written += int64(n)
	if err != nil {
		w.err = err
	}
	return n, err
}

// Size returns the number of bytes written so far (uncompressed).
func (w *ResultWriter) Size() int64 { return w.written }

// Close flushes everything to Redis. The result is then complete but still under its
// temporary key until the completing Update commits it.
func (w *ResultWriter) Close() error {
	if w.err != nil {
		return w.err
	}
	if err := w.buf.Flush(); err != nil {
		return err
	}
	if err := w.gz.Close(); err != nil {
		return err
	}
	if err := w.chunker.close(); err != nil {
		return err
	}
	return w.err
}

// Abort discards what was written.
func (w *ResultWriter) Abort(ctx context.Context) error {
	if w.err == nil {
		w.err = errors.New("store: result aborted")
	}
	return w.rdb.Del(ctx, w.key).Err()
}

func (w *ResultWriter) push(chunk []byte) error {
	_, err := w.rdb.Pipelined(w.ctx, func(p redis.Pipeliner) error {
		p.RPush(w.ctx, w.key, chunk)
		p.PExpire(w.ctx, w.key, tempResultTTL)
		return nil
	})
	if err != nil {
		w.err = fmt.Errorf("store: write result: %w", err)
	}
	return err
}

// chunker cuts a byte stream into ChunkSize pieces.
type chunker struct {
	buf   []byte
	flush func([]byte) error
}

func (c *chunker) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if c.buf == nil {
			c.buf = make([]byte, 0, ChunkSize)
		}
		k := min(ChunkSize-len(c.buf), len(p))
		c.buf = append(c.buf, p[:k]...)
		p = p[k:]
		if len(c.buf) == ChunkSize {
			if err := c.flush(c.buf); err != nil {
				return 0, err
			}
			c.buf = c.buf[:0]
		}
	}
	return n, nil
}

func (c *chunker) close() error {
	if len(c.buf) == 0 {
		return nil
	}
	err := c.flush(c.buf)
	c.buf = nil
	return err
}

// OpenResult returns a reader of the stored result of task id (uncompressed). It
// returns ErrNotFound when there is no result.
func (s *Store) OpenResult(ctx context.Context, id string) (io.ReadCloser, error) {
	key := s.keys.Result(id)
	n, err := s.rdb.LLen(ctx, key).Result()
	if err != nil {
		return nil, fmt.Errorf("store: result %s: %w", id, err)
	}
	if n == 0 {
		return nil, ErrNotFound
	}
	cr := &chunkReader{ctx: ctx, rdb: s.rdb, key: key, n: n}
	gz, err := gzip.NewReader(cr)
	if err != nil {
		return nil, fmt.Errorf("store: result %s: %w", id, err)
	}
	return gz, nil
}

// chunkReader reads the chunks of a stored result one at a time.
type chunkReader struct {
	ctx  context.Context
	rdb  redis.UniversalClient
	key  string
	n    int64
	next int64
	cur  []byte
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.next >= r.n {
			return 0, io.EOF
		}
		b, err := r.rdb.LIndex(r.ctx, r.key, r.next).Bytes()
		if err != nil {
			if errors.Is(err, redis.Nil) {
				return 0, fmt.Errorf("store: result chunk %d vanished", r.next)
			}
			return 0, err
		}
		r.cur = b
		r.next++
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}
