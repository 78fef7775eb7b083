// Command taskwire-server serves taskwire's HTTP API, its Socket.IO endpoint and the
// web app, on one port (the wiring is package internal/app).
//
// Configuration is read from the environment (see the README): HTTP_ADDR, REDIS_URL,
// TASKWIRE_SECRET, LOG_LEVEL and more. On SIGTERM or SIGINT it stops accepting work,
// disconnects its clients spread over a short window so their reconnections do not
// arrive all at once, and exits; a second signal exits at once. Exit codes: 0 after
// a clean shutdown, 1 on a runtime failure, 2 on bad configuration or usage.
//
// `taskwire-server apikey new NAME` prints a new API key and its
// TASKWIRE_API_KEYS entry, and exits.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/taskwire/taskwire/server/internal/app"
	"github.com/taskwire/taskwire/server/internal/auth"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	// Once the first signal arrived, the default handling is back: a second one
	// ends the process at once.
	go func() { <-ctx.Done(); stop() }()
	code := cli(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: taskwire-server            (configured by the environment)
       taskwire-server apikey new NAME`

// cli runs the command with args (without the program name) and returns its
// exit code: the server until ctx is done, or a subcommand.
func cli(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	switch {
	case len(args) == 3 && args[0] == "apikey" && args[1] == "new":
		// A new API key and its TASKWIRE_API_KEYS entry.
		key, hash := auth.NewAPIKey()
		fmt.Fprintf(stdout, "key (give it to the backend; it is not stored anywhere): %s\n", key)
		fmt.Fprintf(stdout, "TASKWIRE_API_KEYS entry (append with a comma to rotate): %s:%s\n", args[2], hash)
		return 0
	case len(args) > 0:
		fmt.Fprintln(stderr, usage)
		return 2
	}
	err := app.Run(ctx, getenv, stdout)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "taskwire-server: %v\n", err)
	if _, ok := errors.AsType[*app.ConfigError](err); ok {
		return 2
	}
	return 1
}
