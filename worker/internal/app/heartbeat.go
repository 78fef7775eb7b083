package app

import (
	"context"
	"os"
	"time"

	"github.com/taskwire/taskwire/emitter"
	"github.com/taskwire/taskwire/shared/operator"
	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/worker/internal/taskctx"
)

// heartbeat writes what the operator dashboard shows of this worker (its
// heartbeat record, valid for three refreshes) and sends it to the operator
// sockets.
type heartbeat struct {
	st    *store.Store
	em    *emitter.Emitter
	reg   *taskctx.Registry
	info  store.WorkerInfo
	every time.Duration
}

func newHeartbeat(st *store.Store, em *emitter.Emitter, reg *taskctx.Registry, consumer string, kinds []string, concurrency int, every time.Duration) *heartbeat {
	host, _ := os.Hostname()
	return &heartbeat{st: st, em: em.Of(operator.Namespace), reg: reg, every: every, info: store.WorkerInfo{
		ID: consumer, Host: host, PID: os.Getpid(), Kinds: kinds, Concurrency: concurrency,
		Version: store.BuildVersion(), StartedAt: time.Now().UTC(),
	}}
}

// beat writes one heartbeat.
func (h *heartbeat) beat(ctx context.Context) error {
	info := h.info
	info.Running = h.reg.IDs()
	info.LastHeartbeat = time.Now().UTC()
	if err := h.st.PutWorker(ctx, &info, 3*h.every); err != nil {
		return err
	}
	return h.em.Emit(ctx, operator.EventWorker, info)
}

// stop removes the heartbeat and says so to the operator sockets.
func (h *heartbeat) stop(ctx context.Context) error {
	if err := h.st.DeleteWorker(ctx, h.info.ID); err != nil {
		return err
	}
	return h.em.Emit(ctx, operator.EventWorker, operator.WorkerGone{ID: h.info.ID, Gone: true})
}
