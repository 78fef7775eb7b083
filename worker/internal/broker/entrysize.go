package broker

import (
	"fmt"
	"strings"

	"github.com/taskwire/taskwire/shared/tasks"
)

// MaxEntryBytes bounds the queue entries the worker decodes. A message the
// server queues is a few hundred bytes (its parameters are checked and
// bounded); anything much larger was not written by a server, and decoding it
// would cost memory out of proportion (JSON decoding allocates several times
// the entry's size).
const MaxEntryBytes = 256 << 10

// oversized returns the rejection of an entry larger than MaxEntryBytes, with
// the task id when the entry starts as the server writes its messages
// ({"id":"<id>",...}), so that the task can be failed; nil when s is within
// the bound.
func oversized(entry, s string) (*tasks.Message, *tasks.ErrorInfo) {
	if len(s) <= MaxEntryBytes {
		return nil, nil
	}
	info := &tasks.ErrorInfo{Code: CodeMalformed,
		Message: fmt.Sprintf("queue entry %s is %d bytes, more than the %d a task message may have; not decoded", entry, len(s), MaxEntryBytes)}
	var msg *tasks.Message
	if rest, ok := strings.CutPrefix(s, `{"id":"`); ok {
		if i := strings.IndexByte(rest[:min(len(rest), 64)], '"'); i > 0 && tasks.ValidID(rest[:i]) {
			msg = &tasks.Message{ID: rest[:i]}
		}
	}
	return msg, info
}
