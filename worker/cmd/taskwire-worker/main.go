// Command taskwire-worker runs taskwire's tasks: a Machinery worker on a Redis
// Stream, reporting progress to browsers through the Socket.IO emitter.
//
// Configuration comes from the environment (see internal/config). SIGTERM or
// SIGINT starts a graceful shutdown; a second one exits at once. Exit codes: 0
// after a clean shutdown, 1 on a runtime failure or a second signal, 2 on bad
// configuration.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/taskwire/taskwire/worker/internal/app"
	"github.com/taskwire/taskwire/worker/internal/config"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, os.Interrupt)
	go func() {
		<-sigs
		cancel()
		<-sigs
		fmt.Fprintln(os.Stderr, "taskwire-worker: second signal, exiting at once")
		os.Exit(1)
	}()
	err := run(ctx, os.Getenv, os.Stdout)
	var cerr *config.Error
	switch {
	case errors.As(err, &cerr):
		fmt.Fprintln(os.Stderr, "taskwire-worker:", err)
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "taskwire-worker:", err)
		os.Exit(1)
	}
}

// run reads the configuration through getenv, logs JSON to stdout and runs the
// worker until ctx is done.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		slog.New(slog.NewJSONHandler(stdout, nil)).Error("invalid configuration", "err", err)
		return err
	}
	log := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: cfg.LogLevel}))
	attrs := make([]any, 0, len(cfg.LogAttrs()))
	for _, a := range cfg.LogAttrs() {
		attrs = append(attrs, a)
	}
	log.Info("configuration", attrs...)
	return app.Run(ctx, app.Options{Config: cfg, Logger: log})
}
