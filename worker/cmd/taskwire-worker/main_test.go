package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/taskwire/taskwire/shared/events"
	"github.com/taskwire/taskwire/shared/store"
	"github.com/taskwire/taskwire/shared/tasks"
	"github.com/taskwire/taskwire/worker/internal/export"
	"github.com/taskwire/taskwire/worker/internal/testenv"
)

// binary is the worker built for these tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "taskwire-worker-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "taskwire-worker")
	args := []string{"build", "-o", binary}
	if raceBuild {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the worker:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a worker process.
type proc struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd

	mu      sync.Mutex
	lines   []string
	changed chan struct{}
	exited  chan struct{}
	code    int
}

// startProc starts the worker with the test defaults and env on top.
func startProc(t testing.TB, e *testenv.Env, name string, env map[string]string) *proc {
	t.Helper()
	vars := map[string]string{
		"REDIS_URL":            e.Redis.URL,
		"TASKWIRE_PREFIX":      e.Prefix,
		"METRICS_ADDR":         "127.0.0.1:0",
		"WORKER_LEASE_TIMEOUT": "2s",
		"LOG_LEVEL":            "debug",
	}
	for k, v := range env {
		vars[k] = v
	}
	p := startRaw(t, name, vars)
	p.waitLog(10*time.Second, "worker started")
	return p
}

func startRaw(t testing.TB, name string, vars map[string]string) *proc {
	t.Helper()
	cmd := exec.Command(binary)
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, name: name, cmd: cmd, changed: make(chan struct{}), exited: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			close(p.changed)
			p.changed = make(chan struct{})
			p.mu.Unlock()
		}
		_ = cmd.Wait()
		p.mu.Lock()
		p.code = cmd.ProcessState.ExitCode()
		p.mu.Unlock()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
		if strings.Contains(p.log(), "DATA RACE") {
			t.Errorf("%s: the race detector found a data race", name)
		}
		if t.Failed() || testing.Verbose() {
			t.Logf("--- log of %s:\n%s", name, p.log())
		}
	})
	return p
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// logged returns the log entries whose msg is msg.
func (p *proc) logged(msg string) []map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []map[string]any
	for _, l := range p.lines {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// waitLog waits for a log entry with msg.
func (p *proc) waitLog(timeout time.Duration, msg string) map[string]any {
	p.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		ch := p.changed
		p.mu.Unlock()
		if l := p.logged(msg); len(l) > 0 {
			return l[0]
		}
		select {
		case <-ch:
		case <-p.exited:
			if l := p.logged(msg); len(l) > 0 {
				return l[0]
			}
			p.t.Fatalf("%s exited before logging %q", p.name, msg)
		case <-deadline.C:
			p.t.Fatalf("%s did not log %q within %v", p.name, msg, timeout)
		}
	}
}

// startedTasks returns the ids of the tasks the process started.
func (p *proc) startedTasks() []string {
	var ids []string
	for _, l := range p.logged("task started") {
		ids = append(ids, fmt.Sprint(l["task"]))
	}
	return ids
}

func (p *proc) signal(s syscall.Signal) {
	if err := p.cmd.Process.Signal(s); err != nil {
		p.t.Fatalf("signal %s: %v", p.name, err)
	}
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(timeout):
		p.t.Fatalf("%s did not exit within %v", p.name, timeout)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.code
}

func (p *proc) kill9() {
	p.t.Helper()
	p.signal(syscall.SIGKILL)
	p.wait(10 * time.Second)
}

// waitRunning waits until task id reported at least done rows.
func waitRunning(t *testing.T, e *testenv.Env, id string, done int64) {
	t.Helper()
	e.Events.Wait(t, 20*time.Second, fmt.Sprintf("progress of %s past %d rows", id, done), func(r *testenv.Recorder) bool {
		for _, ev := range r.Of(id) {
			if ev.Name == events.TaskProgress && testenv.Int(ev.Payload["done"]) >= done {
				return true
			}
		}
		return false
	})
}

// checkResult checks that task id has the deterministic export of rows rows.
func checkResult(t *testing.T, e *testenv.Env, id string, rows int) {
	t.Helper()
	rc, err := e.Store.OpenResult(context.Background(), id)
	if err != nil {
		t.Fatalf("result of %s: %v", id, err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if _, err := export.Write(context.Background(), &want, id, rows, export.Options{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("result of %s: %d bytes, not the export of %d rows", id, len(got), rows)
	}
}

func TestKillMidExport(t *testing.T) {
	e := testenv.New(t)
	env := map[string]string{"EXPORT_ROW_DELAY": "1ms"}
	a := startProc(t, e, "worker-a", env)
	id := e.Submit(3000, nil) // about 3 s
	waitRunning(t, e, id, 500)
	startProc(t, e, "worker-b", env)
	a.kill9()

	rec := e.WaitFinal(id, 40*time.Second)
	if rec.State != tasks.StateCompleted || rec.Attempts != 2 {
		t.Fatalf("record %+v", rec)
	}
	if n := e.Events.Count(id, events.TaskCompleted); n != 1 {
		t.Fatalf("%d task:completed events:\n%s", n, e.Events.Dump())
	}
	if n := e.Events.Count(id, events.TaskFailed); n != 0 {
		t.Fatalf("task:failed events:\n%s", e.Events.Dump())
	}
	// Sequence numbers go on increasing across the two attempts.
	var last int64
	for _, ev := range e.Events.Of(id) {
		if ev.Seq <= last {
			t.Fatalf("seq not increasing:\n%s", e.Events.Dump())
		}
		last = ev.Seq
	}
	checkResult(t, e, id, 3000)
}

func TestManyTasksOneWorkerKilled(t *testing.T) {
	e := testenv.New(t)
	env := map[string]string{"EXPORT_ROW_DELAY": "1ms", "WORKER_CONCURRENCY": "2"}
	victim := startProc(t, e, "worker-1", env)
	startProc(t, e, "worker-2", env)
	startProc(t, e, "worker-3", env)
	const n = 50
	ids := make([]string, n)
	for i := range ids {
		ids[i] = e.Submit(200+50*(i%5), nil) // 0.2 to 0.4 s each
	}
	completed := func(r *testenv.Recorder) int {
		c := 0
		for _, id := range ids {
			if r.Count(id, events.TaskCompleted) > 0 {
				c++
			}
		}
		return c
	}
	// Kill worker-1 in the middle of the run, while it is in the middle of a task.
	midTask := func(r *testenv.Recorder) []string {
		var out []string
		for _, id := range victim.startedTasks() {
			if r.Count(id, events.TaskCompleted) > 0 {
				continue
			}
			for _, ev := range r.Of(id) {
				if ev.Name == events.TaskProgress && testenv.Int(ev.Payload["done"]) >= 64 {
					out = append(out, id)
					break
				}
			}
		}
		return out
	}
	e.Events.Wait(t, 60*time.Second, "worker-1 mid-task after 10 completed tasks", func(r *testenv.Recorder) bool {
		return completed(r) >= 10 && len(midTask(r)) > 0
	})
	victim.kill9()
	interrupted := midTask(e.Events)
	t.Logf("killed worker-1 after it started %d task(s), in the middle of %v", len(victim.startedTasks()), interrupted)

	e.Events.Wait(t, 90*time.Second, "50 completed tasks", func(r *testenv.Recorder) bool { return completed(r) == n })
	for _, id := range ids {
		if c := e.Events.Count(id, events.TaskCompleted); c != 1 {
			t.Errorf("task %s completed %d times", id, c)
		}
		if rec := e.Record(id); rec.State != tasks.StateCompleted {
			t.Errorf("task %s: %+v", id, rec)
		}
	}
	for _, id := range interrupted {
		if rec := e.Record(id); rec.Attempts != 2 {
			t.Errorf("interrupted task %s has %d attempts", id, rec.Attempts)
		}
	}
}

func TestSIGTERMFinishesRunningTasks(t *testing.T) {
	e := testenv.New(t)
	env := map[string]string{"EXPORT_ROW_DELAY": "1ms", "WORKER_CONCURRENCY": "2"}
	a := startProc(t, e, "worker-a", env)
	running := []string{e.Submit(1500, nil), e.Submit(1500, nil)}
	for _, id := range running {
		waitRunning(t, e, id, 256)
	}
	startProc(t, e, "worker-b", env)
	var queued []string
	for range 4 {
		queued = append(queued, e.Submit(300, nil))
	}
	a.signal(syscall.SIGTERM)
	if code := a.wait(30 * time.Second); code != 0 {
		t.Fatalf("worker-a exited with %d", code)
	}
	for _, id := range append(append([]string{}, running...), queued...) {
		rec := e.WaitFinal(id, 30*time.Second)
		if rec.State != tasks.StateCompleted || e.Events.Count(id, events.TaskCompleted) != 1 {
			t.Fatalf("task %s: %+v, %d completed events", id, rec, e.Events.Count(id, events.TaskCompleted))
		}
	}
	// worker-a finished its two tasks itself and took nothing after the signal.
	for _, id := range running {
		if rec := e.Record(id); rec.Attempts != 1 {
			t.Fatalf("running task %s has %d attempts", id, rec.Attempts)
		}
	}
	if got := a.startedTasks(); len(got) != 2 {
		t.Fatalf("worker-a started %v", got)
	}
}

func TestSIGTERMHandsBackAfterTimeout(t *testing.T) {
	e := testenv.New(t)
	// A lease far longer than the test's wait: the tasks must come back through
	// the hand-back, not the lease.
	env := map[string]string{"EXPORT_ROW_DELAY": "1ms", "WORKER_CONCURRENCY": "2", "WORKER_LEASE_TIMEOUT": "60s",
		"WORKER_SHUTDOWN_TIMEOUT": "300ms"}
	a := startProc(t, e, "worker-a", env)
	ids := []string{e.Submit(3000, nil), e.Submit(3000, nil)}
	for _, id := range ids {
		waitRunning(t, e, id, 256)
	}
	startProc(t, e, "worker-b", env)
	a.signal(syscall.SIGTERM)
	if code := a.wait(20 * time.Second); code != 0 {
		t.Fatalf("worker-a exited with %d", code)
	}
	for _, id := range ids {
		rec := e.WaitFinal(id, 25*time.Second)
		if rec.State != tasks.StateCompleted || rec.Attempts != 2 || e.Events.Count(id, events.TaskCompleted) != 1 {
			t.Fatalf("task %s: %+v", id, rec)
		}
		requeued := false
		for _, ev := range e.Events.Of(id) {
			if ev.Name == events.TaskProgress && ev.Payload["stage"] == "requeued" {
				requeued = true
			}
		}
		if !requeued {
			t.Fatalf("no requeued event for %s:\n%s", id, e.Events.Dump())
		}
		checkResult(t, e, id, 3000)
	}
}

func TestSecondSIGTERMExitsAtOnce(t *testing.T) {
	e := testenv.New(t)
	a := startProc(t, e, "worker-a", map[string]string{"EXPORT_ROW_DELAY": "1ms"})
	id := e.Submit(100000, nil) // 100 s
	waitRunning(t, e, id, 256)
	a.signal(syscall.SIGTERM)
	a.waitLog(10*time.Second, "shutting down: no new tasks; waiting for the running ones")
	a.signal(syscall.SIGTERM)
	if code := a.wait(5 * time.Second); code != 1 {
		t.Fatalf("exit code %d after a second signal, want 1", code)
	}
}

func TestCancelRunningTask(t *testing.T) {
	for _, viaPubSub := range []bool{true, false} {
		name := "pubsub"
		if !viaPubSub {
			name = "record only"
		}
		t.Run(name, func(t *testing.T) {
			e := testenv.New(t)
			startProc(t, e, "worker-a", map[string]string{"EXPORT_ROW_DELAY": "1ms"})
			id := e.Submit(20000, nil) // 20 s
			waitRunning(t, e, id, 500)
			ctx := context.Background()
			asked := time.Now()
			if viaPubSub {
				if _, err := e.Store.RequestCancel(ctx, id); err != nil {
					t.Fatal(err)
				}
			} else {
				// As if the message on the cancel channel were lost: only the field.
				if err := e.Client.HSet(ctx, e.Store.Keys().Task(id), tasks.FieldCancel, "1").Err(); err != nil {
					t.Fatal(err)
				}
			}
			rec := e.WaitFinal(id, 10*time.Second)
			ev := e.Events.Final(id)
			t.Logf("cancelled %v after the request", ev.At.Sub(asked).Round(time.Millisecond))
			if rec.State != tasks.StateCancelled || ev.Name != events.TaskCancelled || ev.Seq != rec.Seq || rec.Done >= 20000 || rec.FinishedAt == nil {
				t.Fatalf("record %+v, final event %+v", rec, ev)
			}
			keys, err := e.Client.Keys(ctx, e.Store.Keys().Result(id)+"*").Result()
			if err != nil || len(keys) > 0 {
				t.Fatalf("result keys left: %v %v", keys, err)
			}
		})
	}
}

func TestCancelQueuedTaskNeverStarts(t *testing.T) {
	e := testenv.New(t)
	ctx := context.Background()
	id := e.Submit(1000, nil)
	em := func(*tasks.Record, *store.Update) error { return nil }
	if _, err := e.Store.CancelQueued(ctx, id, time.Now(), em); err != nil {
		t.Fatal(err)
	}
	a := startProc(t, e, "worker-a", nil)
	after := e.Submit(10, nil)
	e.WaitFinal(after, 20*time.Second)
	testenv.Eventually(t, 10*time.Second, "empty queue", func() bool {
		n, _ := e.Client.XLen(ctx, e.Store.Keys().Queue(tasks.KindExport)).Result()
		return n == 0
	})
	rec := e.Record(id)
	if rec.State != tasks.StateCancelled || rec.Attempts != 0 || rec.StartedAt != nil {
		t.Fatalf("cancelled task: %+v", rec)
	}
	if n := len(e.Events.Of(id)); n != 0 {
		t.Fatalf("the worker published for a cancelled task:\n%s", e.Events.Dump())
	}
	for _, s := range a.startedTasks() {
		if s == id {
			t.Fatal("the cancelled task started")
		}
	}
}

func TestWorkerLostAfterMaxAttempts(t *testing.T) {
	e := testenv.New(t)
	env := map[string]string{"EXPORT_ROW_DELAY": "1ms"}
	a := startProc(t, e, "worker-a", env)
	id := e.Submit(5000, func(r *tasks.Record) { r.MaxAttempts = 1 })
	waitRunning(t, e, id, 256)
	startProc(t, e, "worker-b", env)
	a.kill9()
	rec := e.WaitFinal(id, 30*time.Second)
	if rec.State != tasks.StateFailed || rec.Error == nil || rec.Error.Code != "worker_lost" || rec.Attempts != 1 {
		t.Fatalf("record %+v %+v", rec, rec.Error)
	}
	ev := e.Events.Final(id)
	if ev.Name != events.TaskFailed {
		t.Fatalf("final event %+v", ev)
	}
	if code := ev.Payload["error"].(map[string]any)["code"]; code != "worker_lost" {
		t.Fatalf("error code %v", code)
	}
}

func TestRedisOutageMidExport(t *testing.T) {
	// Redis with an append-only file, so the restart keeps the data, like a
	// production Redis; it is away for two seconds while an export runs.
	e := testenv.New(t, "--appendonly", "yes", "--appendfsync", "always")
	a := startProc(t, e, "worker-a", map[string]string{"EXPORT_ROW_DELAY": "1ms"})
	id := e.Submit(3000, nil)
	waitRunning(t, e, id, 500)
	pid := a.cmd.Process.Pid
	e.Redis.Stop()
	time.Sleep(2 * time.Second) // the length of the outage, not a synchronisation
	e.Redis.Restart()
	// The event recorder's subscription may have missed events during the
	// outage; the record is the truth.
	testenv.Eventually(t, 60*time.Second, "final state of "+id, func() bool {
		rec, err := e.Store.Get(context.Background(), id)
		return err == nil && rec.State.Final()
	})
	rec := e.Record(id)
	if rec.State != tasks.StateCompleted {
		t.Fatalf("record %+v %+v", rec, rec.Error)
	}
	t.Logf("completed after the outage in %d attempt(s)", rec.Attempts)
	checkResult(t, e, id, 3000)
	// The same process goes on taking tasks.
	select {
	case <-a.exited:
		t.Fatal("the worker exited")
	default:
	}
	if a.cmd.Process.Pid != pid {
		t.Fatal("pid changed")
	}
	next := e.Submit(10, nil)
	testenv.Eventually(t, 30*time.Second, "completion of a task queued after the outage", func() bool {
		rec, err := e.Store.Get(context.Background(), next)
		return err == nil && rec.State == tasks.StateCompleted
	})
}

func TestRedisPauseWithTwoWorkers(t *testing.T) {
	e := testenv.New(t)
	env := map[string]string{"EXPORT_ROW_DELAY": "1ms"}
	a := startProc(t, e, "worker-a", env)
	b := startProc(t, e, "worker-b", env)
	ids := []string{e.Submit(3000, nil), e.Submit(3000, nil), e.Submit(3000, nil)}
	for _, id := range ids {
		waitRunning(t, e, id, 256)
	}
	// Redis answers nothing for 5 s, longer than the 2 s lease: after it, a
	// worker may take over the other's tasks; each still completes once.
	if err := e.Redis.Pause(context.Background(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		rec := e.WaitFinal(id, 60*time.Second)
		if rec.State != tasks.StateCompleted || e.Events.Count(id, events.TaskCompleted) != 1 {
			t.Fatalf("task %s: %+v, %d completed events", id, rec, e.Events.Count(id, events.TaskCompleted))
		}
		checkResult(t, e, id, 3000)
		t.Logf("task %s completed in %d attempt(s)", id, rec.Attempts)
	}
	for _, p := range []*proc{a, b} {
		select {
		case <-p.exited:
			t.Fatalf("%s exited", p.name)
		default:
		}
	}
}

func TestBadConfigExitsWith2(t *testing.T) {
	p := startRaw(t, "bad", map[string]string{"WORKER_CONCURRENCY": "many", "RESULT_MAX_BYTES": "-1"})
	if code := p.wait(10 * time.Second); code != 2 {
		t.Fatalf("exit code %d, want 2", code)
	}
	out := p.log()
	for _, want := range []string{"WORKER_CONCURRENCY", "RESULT_MAX_BYTES", "invalid configuration"} {
		if !strings.Contains(out, want) {
			t.Fatalf("output does not mention %s:\n%s", want, out)
		}
	}
}
