// Command taskwire-worker runs taskwire's own kinds of task (export, and the
// kinds registered next to it) with the public worker SDK: a program like any
// user's, built on package worker.
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

	"github.com/taskwire/taskwire/worker"
	"github.com/taskwire/taskwire/worker/internal/config"
	"github.com/taskwire/taskwire/worker/internal/kinds/export"
	"github.com/taskwire/taskwire/worker/internal/kinds/report"
	"github.com/taskwire/taskwire/worker/internal/kinds/train"
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
	w, err := worker.New(options(cfg, log))
	if err != nil {
		return err
	}
	export.Register(w, export.Options{RowDelay: cfg.ExportRowDelay})
	report.Register(w, report.Options{Pace: cfg.ReportPageDelay})
	train.Register(w, train.Options{Pace: cfg.TrainEpochDelay})
	return w.Run(ctx)
}

// options are the SDK's options for cfg.
func options(cfg *config.Config, log *slog.Logger) worker.Options {
	rate := cfg.ProgressMaxRate
	if rate == 0 {
		rate = -1 // no limit
	}
	return worker.Options{
		RedisURL: cfg.RedisURL, Concurrency: cfg.Concurrency, Logger: log,
		ShutdownTimeout: cfg.ShutdownTimeout, LeaseTimeout: cfg.LeaseTimeout, MaxAttempts: cfg.MaxAttempts,
		ResultMaxBytes: cfg.ResultMaxBytes, ProgressMaxRate: rate, Prefix: cfg.Prefix,
		SocketIOKey: cfg.SocketIOKey, SocketIOAdapter: cfg.SocketIOAdapter, TaskTTL: cfg.TaskTTL,
		MetricsAddr: cfg.MetricsAddr, LogLevel: cfg.LogLevel,
	}
}
