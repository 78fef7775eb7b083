package wire

import (
	"bytes"
	"sync"
)

// maxPooled is the largest buffer kept for reuse; bigger ones (a message with a
// large binary argument) are left to the garbage collector.
const maxPooled = 64 << 10

var (
	mpWriters   = sync.Pool{New: func() any { return &mpWriter{b: make([]byte, 0, 512)} }}
	jsonWriters = sync.Pool{New: func() any { return &jsonWriter{b: make([]byte, 0, 512)} }}
)

func getMP() *mpWriter {
	w := mpWriters.Get().(*mpWriter)
	w.b = w.b[:0]
	return w
}

// done returns a copy of what w wrote and puts w back in the pool.
func (w *mpWriter) done() []byte {
	out := bytes.Clone(w.b)
	w.release()
	return out
}

func (w *mpWriter) release() {
	if cap(w.b) <= maxPooled {
		mpWriters.Put(w)
	}
}

func getJSON(buffers bool) *jsonWriter {
	w := jsonWriters.Get().(*jsonWriter)
	w.reset(buffers)
	return w
}

func (w *jsonWriter) done() []byte {
	out := bytes.Clone(w.b)
	w.release()
	return out
}

func (w *jsonWriter) release() {
	if cap(w.b) <= maxPooled {
		jsonWriters.Put(w)
	}
}
