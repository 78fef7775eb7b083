// Package tasks is the contract between the server, which accepts tasks and puts them
// on the queue, and the worker, which runs them.
//
// It names the task kinds and validates their parameters, defines the task states and
// the task record that is kept in Redis (one hash per task), and the message that
// travels on the task queue. It has no I/O: package store reads and writes these
// values in Redis.
package tasks
