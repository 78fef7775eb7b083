// Package redisobs tells the metrics of taskwire's binaries about the Redis
// commands that fail: a go-redis hook that reports every failed dial, command
// and pipeline, leaving out the answers that are no failure (redis.Nil, a
// script not cached yet, a cancelled context).
package redisobs

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Operations reported to Hook.OnError.
const (
	OpDial     = "dial"
	OpCommand  = "command"
	OpPipeline = "pipeline"
)

// Ops are the values Hook.OnError can be called with.
var Ops = []string{OpDial, OpCommand, OpPipeline}

// Hook is a redis.Hook that calls OnError with the operation (OpDial,
// OpCommand, OpPipeline) of every failure. Add it with
// redis.UniversalClient.AddHook.
type Hook struct {
	OnError func(op string)
}

// DialHook reports failed connections (each try of go-redis's dialer).
func (h Hook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		if Failed(err) {
			h.OnError(OpDial)
		}
		return c, err
	}
}

// ProcessHook reports failed commands.
func (h Hook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if Failed(err) && !optionalFeature(cmd, err) {
			h.OnError(OpCommand)
		}
		return err
	}
}

// ProcessPipelineHook reports pipelines (and transactions) that failed.
func (h Hook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if Failed(err) && pipelineFailed(cmds, err) {
			h.OnError(OpPipeline)
		}
		return err
	}
}

// optionalFeature reports whether err is a server refusing a feature that
// go-redis asks for on every new connection and does without (CLIENT
// MAINT_NOTIFICATIONS, unknown to Redis before 8).
func optionalFeature(cmd redis.Cmder, err error) bool {
	return cmd.Name() == "client" && strings.Contains(err.Error(), "unknown subcommand")
}

// pipelineFailed reports whether a pipeline that returned err had a failure:
// an error of the pipeline itself (no command has it), or a command's that is
// no optional feature.
func pipelineFailed(cmds []redis.Cmder, err error) bool {
	found := false
	for _, c := range cmds {
		if cerr := c.Err(); Failed(cerr) {
			found = true
			if !optionalFeature(c, cerr) {
				return true
			}
		}
	}
	return !found
}

// Failed reports whether err is a failure of Redis or of the way to it: not
// nil, not redis.Nil (no such key, a blocking read that timed out), not
// NOSCRIPT (go-redis sends the script itself next) and not a cancelled
// context (the caller gave up).
func Failed(err error) bool {
	switch {
	case err == nil, errors.Is(err, redis.Nil), errors.Is(err, context.Canceled):
		return false
	case strings.HasPrefix(err.Error(), "NOSCRIPT"):
		return false
	}
	return true
}
