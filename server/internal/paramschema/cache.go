package paramschema

import (
	"bytes"
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"sync"
)

// DefaultCacheSize is the number of schema versions a Cache keeps when
// NewCache is given 0.
const DefaultCacheSize = 256

// Cache keeps compiled schemas by schema hash, the most recently used ones
// first, at most a fixed number. A schema that does not compile is kept too, with
// its error, so that it is not compiled again on every request. It is safe for
// concurrent use.
type Cache struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *entry, most recently used first
	byKey map[string]*list.Element
}

type entry struct {
	key    string
	raw    []byte
	schema *Schema
	err    error
}

// NewCache returns a Cache of at most size schemas (DefaultCacheSize when size
// is 0 or less).
func NewCache(size int) *Cache {
	if size <= 0 {
		size = DefaultCacheSize
	}
	return &Cache{max: size, order: list.New(), byKey: map[string]*list.Element{}}
}

// Get returns the compiled form of raw, the schema whose hash is hash,
// compiling it on first use. An empty hash is replaced by one of raw. Should
// the same hash come with a different schema, the new one is compiled and
// replaces the old. The error of a schema that does not compile is returned
// on every Get.
func (c *Cache) Get(hash string, raw []byte) (*Schema, error) {
	if hash == "" {
		sum := sha256.Sum256(raw)
		hash = "sha256:" + hex.EncodeToString(sum[:])
	}
	c.mu.Lock()
	if el, ok := c.byKey[hash]; ok {
		e := el.Value.(*entry)
		if bytes.Equal(e.raw, raw) {
			c.order.MoveToFront(el)
			c.mu.Unlock()
			return e.schema, e.err
		}
	}
	c.mu.Unlock()

	// Compile outside the lock: two requests may compile the same schema at
	// once, which costs a little and is harmless.
	sch, err := Compile(raw)
	e := &entry{key: hash, raw: bytes.Clone(raw), schema: sch, err: err}

	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[hash]; ok {
		c.order.Remove(el)
	}
	c.byKey[hash] = c.order.PushFront(e)
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.byKey, last.Value.(*entry).key)
	}
	return sch, err
}

// Len returns the number of schemas in the cache.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
