package main

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/taskwire/taskwire/shared/events"
	"github.com/taskwire/taskwire/shared/tasks"
	"github.com/taskwire/taskwire/worker/internal/testenv"
)

// BenchmarkProcessExport1M runs a 1,000,000-row export through the worker binary
// and reports the time from queueing to task:completed, the rows per second, the
// progress events sent and the peak resident memory of the worker (VmHWM).
func BenchmarkProcessExport1M(b *testing.B) {
	const rows = 1_000_000
	for b.Loop() {
		b.StopTimer()
		e := testenv.New(b)
		p := startProc(b, e, "bench", map[string]string{"LOG_LEVEL": "info"})
		b.StartTimer()
		t0 := time.Now()
		id := e.Submit(rows, nil)
		e.Events.Wait(b, 5*time.Minute, "completion", func(r *testenv.Recorder) bool { return r.Final(id) != nil })
		elapsed := time.Since(t0)
		b.StopTimer()
		if rec := e.Record(id); rec.State != tasks.StateCompleted {
			b.Fatalf("record %+v", rec)
		}
		b.ReportMetric(elapsed.Seconds(), "s/export")
		b.ReportMetric(rows/elapsed.Seconds(), "rows/s")
		b.ReportMetric(float64(e.Events.Count(id, events.TaskProgress)), "progress-events")
		b.ReportMetric(float64(vmHWM(b, p.cmd.Process.Pid))/1024, "peak-RSS-MiB")
		b.StartTimer()
	}
}

// vmHWM returns the peak resident set size of pid in KiB.
func vmHWM(b *testing.B, pid int) int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	b.Fatal("no VmHWM")
	return 0
}
