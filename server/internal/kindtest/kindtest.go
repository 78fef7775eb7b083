// Package kindtest registers task kinds in the kinds registry for the server's
// tests, as a worker does at start.
package kindtest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
)

// ExportSchema is the params schema of the export kind.
const ExportSchema = `{"type":"object","properties":{"rows":{"type":"integer","minimum":1,"maximum":1000000}},"required":["rows"],"additionalProperties":false}`

// ExportHash is the schema hash Export registers.
const ExportHash = "e0e0e0e0e0e0e0e0"

// TTL is how long the registrations of Register stay live: longer than any
// test.
const TTL = time.Hour

// Export is the export kind as its worker registers it.
func Export() tasks.KindInfo {
	return tasks.KindInfo{
		Name: "export", Title: "CSV export", Description: "Generates a CSV file of orders.",
		ParamsSchema: json.RawMessage(ExportSchema), SchemaHash: ExportHash, TotalParam: "rows",
	}
}

// Register registers kinds as served by the worker workerID, live for TTL.
func Register(tb testing.TB, st *store.Store, workerID string, kinds ...tasks.KindInfo) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := st.RegisterKinds(ctx, workerID, kinds, TTL); err != nil {
		tb.Fatalf("register kinds: %v", err)
	}
}

// RegisterExport registers the export kind, served by one worker.
func RegisterExport(tb testing.TB, st *store.Store) {
	tb.Helper()
	Register(tb, st, "test-worker", Export())
}
