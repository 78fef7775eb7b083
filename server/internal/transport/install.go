package transport

import (
	"sync"

	"github.com/zishang520/engine.io/v2/transports"
)

var installOnce sync.Once

// Install replaces the engine's websocket and polling transports with ours, for
// every engine of the process. It is idempotent. Call it before any engine serves a
// request: the engine reads its transport table without a lock.
func Install() {
	installOnce.Do(func() {
		table := transports.Transports()
		table[transports.WEBSOCKET] = websocketBuilder{}
		table[transports.POLLING] = pollingBuilder{}
	})
}

// Installed reports whether Install has replaced the engine's transports.
func Installed() bool {
	table := transports.Transports()
	_, ws := table[transports.WEBSOCKET].(websocketBuilder)
	_, p := table[transports.POLLING].(pollingBuilder)
	return ws && p
}
