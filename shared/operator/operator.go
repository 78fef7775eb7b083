// Package operator is the contract of the operator dashboard's live updates:
// the Socket.IO namespace that only the operator credential (ADMIN_TOKEN) opens,
// the events servers and workers send to it, and their payloads.
//
// Servers and workers broadcast to the namespace through the Redis adapter, so
// every operator socket hears every replica and every worker.
package operator

import "time"

// Namespace is the Socket.IO namespace of operator sockets.
const Namespace = "/operator"

// Events sent to operator sockets.
const (
	// EventTask carries a TaskChange: a task was created, started, retried or
	// ended.
	EventTask = "task"
	// EventWorker carries a worker's heartbeat (store.WorkerInfo), or a
	// WorkerGone when it stopped.
	EventWorker = "worker"
	// EventServer carries a server's heartbeat (store.ServerInfo).
	EventServer = "server"
	// EventQueue carries the queues of every kind with their totals (what GET
	// /api/v1/admin/queue answers), sent by each server to its own operator
	// sockets with its heartbeat.
	EventQueue = "queue"
)

// TaskChange says that a task changed state.
type TaskChange struct {
	TaskID string `json:"taskId"`
	Kind   string `json:"kind"`
	// State is the task's state after the change.
	State string `json:"state"`
	// Attempt is the attempt that changed it (0 for the server's changes).
	Attempt int `json:"attempt,omitempty"`
	// ErrorCode is set for a failure.
	ErrorCode string    `json:"errorCode,omitempty"`
	At        time.Time `json:"at"`
}

// WorkerGone says that a worker stopped (its heartbeat was removed).
type WorkerGone struct {
	ID   string `json:"id"`
	Gone bool   `json:"gone"`
}
