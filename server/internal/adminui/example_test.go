package adminui_test

import (
	"fmt"

	"github.com/zishang520/socket.io/v2/socket"

	"github.com/taskwire/taskwire/server/internal/adminui"
)

// The namespace is installed on every replica's Socket.IO server (with the Redis
// adapter, so that the UI sees them all); a read-only one offers no action.
func ExampleInstall() {
	io := socket.NewServer(nil, nil)
	admin, err := adminui.Install(io, adminui.Config{
		Token:    []byte("an-operator-token-of-32-bytes-or-more"),
		ReadOnly: true,
		ServerID: "replica-1",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer admin.Close()
	fmt.Println(adminui.Namespace, admin.ServerID(), admin.Features())
	// Output: /admin replica-1 [AGGREGATED_EVENTS ALL_EVENTS]
}
