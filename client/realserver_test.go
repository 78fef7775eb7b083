package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestRealServer drives the real taskwire-server and taskwire-worker (built
// from the repository, or taken from TASKWIRE_BIN_DIR) on a private
// redis-server: a task started for a subject with an API key, read, listed by
// subject, seen by the subject's own JWT, shared with a viewer token,
// cancelled; and the typed errors of the real answers.
func TestRealServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bins := binaries(t, "taskwire-server", "taskwire-worker")
	redisURL := startRedis(t)

	out, err := exec.CommandContext(ctx, bins["taskwire-server"], "apikey", "new", "test-backend").Output()
	if err != nil {
		t.Fatalf("taskwire-server apikey new: %v", err)
	}
	key := regexp.MustCompile(`(?m)^key [^:]*: (\S+)$`).FindSubmatch(out)
	entry := regexp.MustCompile(`(?m)^TASKWIRE_API_KEYS entry [^:]*: (\S+)$`).FindSubmatch(out)
	if key == nil || entry == nil {
		t.Fatalf("apikey new printed %q", out)
	}
	jwtSecret := []byte("jwt-secret-of-the-app-0123456789abcdef")
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	base := "http://" + addr
	startProcess(t, bins["taskwire-server"], nil,
		"HTTP_ADDR="+addr, "REDIS_URL="+redisURL, "TASKWIRE_SECRET=server-secret-0123456789abcdef0123456789",
		"TASKWIRE_JWT_SECRET="+string(jwtSecret), "TASKWIRE_API_KEYS="+string(entry[1]),
		"ANONYMOUS_SESSIONS=false", "SHUTDOWN_TIMEOUT=2s")
	startProcess(t, bins["taskwire-worker"], nil,
		"REDIS_URL="+redisURL, "METRICS_ADDR=off", "WORKER_CONCURRENCY=4", "EXPORT_ROW_DELAY=2ms")
	waitFor(ctx, t, "the server to be ready", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})
	waitFor(ctx, t, "the worker to register the kind export", func() bool {
		var kinds struct {
			Kinds []struct{ Name string } `json:"kinds"`
		}
		return getJSON(base+"/api/v1/kinds", "", &kinds) == nil &&
			slices.ContainsFunc(kinds.Kinds, func(k struct{ Name string }) bool { return k.Name == "export" })
	})

	c, err := New(base, string(key[1]))
	if err != nil {
		t.Fatal(err)
	}
	const subject = "u-42"

	// Start for a subject, then get.
	started, err := c.Start(ctx, "export", map[string]any{"rows": 300}, ForSubject(subject))
	if err != nil {
		t.Fatal(err)
	}
	if started.ID == "" || started.State != StateQueued {
		t.Fatalf("started %+v", started)
	}
	task, err := c.Get(ctx, started.ID)
	if err != nil {
		t.Fatal(err)
	}
	if task.ID != started.ID || task.Kind != "export" || !strings.Contains(string(task.Params), `"rows":300`) {
		t.Fatalf("task %+v", task)
	}
	waitFor(ctx, t, "the task to complete", func() bool {
		task, err = c.Get(ctx, started.ID)
		return err == nil && task.State.Final()
	})
	if task.State != StateCompleted || task.Result == nil || task.Result.Rows != 300 || task.Percent != 100 {
		t.Fatalf("task %+v, result %+v", task, task.Result)
	}

	// A long one, cancelled while it runs.
	long, err := c.Start(ctx, "export", map[string]any{"rows": 100000}, ForSubject(subject))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "the long task to run", func() bool {
		task, err = c.Get(ctx, long.ID)
		return err == nil && task.State == StateRunning
	})
	task, err = c.Cancel(ctx, long.ID)
	if err != nil {
		t.Fatal(err)
	}
	if task.State != StateCancelled && !task.CancelRequested {
		t.Fatalf("after cancel: %+v", task)
	}
	waitFor(ctx, t, "the long task to be cancelled", func() bool {
		task, err = c.Get(ctx, long.ID)
		return err == nil && task.State == StateCancelled
	})

	// Listed by subject: the subject's tasks, newest first; nobody else's.
	list, err := c.List(ctx, subject)
	if err != nil {
		t.Fatal(err)
	}
	if ids := taskIDs(list); !slices.Equal(ids, []string{long.ID, started.ID}) {
		t.Fatalf("list of %s: %v, want [%s %s]", subject, ids, long.ID, started.ID)
	}
	if list, err := c.List(ctx, "u-7"); err != nil || len(list) != 0 {
		t.Fatalf("list of u-7: %v %v", taskIDs(list), err)
	}

	// The subject's inbox: both finished tasks, newest first, until marked seen.
	items, err := c.Inbox(ctx, subject)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || items[0].TaskID != long.ID || items[0].State != StateCancelled ||
		items[1].TaskID != started.ID || items[1].State != StateCompleted || items[1].FinishedAt.IsZero() {
		t.Fatalf("inbox of %s: %+v", subject, items)
	}
	if _, err := c.AckInbox(ctx, "u-7", started.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("u-7 acks a task of %s: %v", subject, err)
	}
	if ids, err := c.AckInbox(ctx, subject, started.ID); err != nil || !slices.Equal(ids, []string{started.ID}) {
		t.Fatalf("ack: %v %v", ids, err)
	}
	if items, err := c.Inbox(ctx, subject); err != nil || len(items) != 1 || items[0].TaskID != long.ID {
		t.Fatalf("inbox after the ack: %+v %v", items, err)
	}
	if task, err := c.Get(ctx, started.ID); err != nil || task.SeenAt == nil || task.DeliveredAt != nil {
		t.Fatalf("record after the ack: %+v %v", task, err)
	}

	// The subject's own JWT sees the same tasks: they are its.
	jwt, err := SignUserToken(jwtSecret, subject, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var mine struct{ Tasks []*Task }
	if err := getJSON(base+"/api/v1/tasks", jwt, &mine); err != nil {
		t.Fatal(err)
	}
	if ids := taskIDs(mine.Tasks); !slices.Equal(ids, []string{long.ID, started.ID}) {
		t.Fatalf("the subject's JWT lists %v", ids)
	}
	other, _ := SignUserToken(jwtSecret, "u-7", time.Minute)
	if err := getJSON(base+"/api/v1/tasks/"+started.ID, other, &Task{}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("another user's JWT reads the task: %v", err)
	}

	// A viewer token reads that one task.
	v, err := c.Viewer(ctx, started.ID, 10*time.Minute, false)
	if err != nil {
		t.Fatal(err)
	}
	if v.Token == "" || v.TaskID != started.ID || time.Until(v.ExpiresAt) < 9*time.Minute || time.Until(v.ExpiresAt) > 11*time.Minute {
		t.Fatalf("viewer %+v", v)
	}
	var seen Task
	if err := getJSON(base+"/api/v1/tasks/"+started.ID, v.Token, &seen); err != nil || seen.ID != started.ID {
		t.Fatalf("the viewer token reads %+v: %v", seen, err)
	}
	if err := getJSON(base+"/api/v1/tasks/"+long.ID, v.Token, &seen); err == nil {
		t.Fatal("the viewer token reads another task")
	}

	// Typed errors of real answers.
	for name, tc := range map[string]struct {
		call   func() error
		want   error
		status int
	}{
		"unknown kind": {func() error {
			_, err := c.Start(ctx, "no-such-kind", nil, ForSubject(subject))
			return err
		}, ErrUnknownKind, 400},
		"invalid params": {func() error {
			_, err := c.Start(ctx, "export", map[string]any{"rows": -1}, ForSubject(subject))
			return err
		}, ErrInvalidParams, 400},
		"not found":   {func() error { _, err := c.Get(ctx, "0123456789abcdef0123456789abcdef"); return err }, ErrNotFound, 404},
		"finished":    {func() error { _, err := c.Cancel(ctx, started.ID); return err }, ErrTaskFinished, 409},
		"bad subject": {func() error { _, err := c.List(ctx, strings.Repeat("x", 300)); return err }, ErrBadRequest, 400},
		"unknown key": {func() error {
			bad, _ := New(base, "twk_not-a-key")
			_, err := bad.List(ctx, subject)
			return err
		}, ErrUnauthorized, 401},
	} {
		err := tc.call()
		var e *Error
		if !errors.Is(err, tc.want) || !errors.As(err, &e) || e.Status != tc.status || e.Message == "" {
			t.Errorf("%s: %v, want %v (%d)", name, err, tc.want, tc.status)
		}
		if name == "unknown kind" && (e == nil || !slices.Contains(e.Known, "export")) {
			t.Errorf("unknown kind: known %v", e)
		}
		if name == "invalid params" && (e == nil || len(e.Details) == 0 || e.Details[0].Field != "params.rows") {
			t.Errorf("invalid params: details %+v", e)
		}
	}
}

func taskIDs(list []*Task) []string {
	ids := []string{}
	for _, t := range list {
		ids = append(ids, t.ID)
	}
	return ids
}

// getJSON GETs url with token as a bearer (when not empty) and decodes a 200
// answer into out.
func getJSON(url, token string, out any) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// waitFor polls cond every 50 ms until it holds, failing t when ctx ends
// first.
func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// binaries returns the paths of the named binaries of the repository: from
// TASKWIRE_BIN_DIR when it has them, else built into a temporary directory.
func binaries(t *testing.T, names ...string) map[string]string {
	t.Helper()
	pkgs := map[string]string{
		"taskwire-server": "./server/cmd/taskwire-server",
		"taskwire-worker": "./worker/cmd/taskwire-worker",
	}
	out := map[string]string{}
	dir := t.TempDir()
	for _, name := range names {
		if bin := os.Getenv("TASKWIRE_BIN_DIR"); bin != "" {
			if st, err := os.Stat(filepath.Join(bin, name)); err == nil && st.Mode().IsRegular() {
				out[name], _ = filepath.Abs(filepath.Join(bin, name))
				continue
			}
		}
		path := filepath.Join(dir, name)
		build := exec.Command("go", "build", "-o", path, pkgs[name])
		build.Dir = ".." // the repository root
		work, _ := filepath.Abs(filepath.Join("..", "go.work"))
		build.Env = append(os.Environ(), "GOWORK="+work) // also when this module is tested with GOWORK=off
		if b, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkgs[name], err, b)
		}
		out[name] = path
	}
	return out
}

// process is a child process of a test, with its last lines of output.
type process struct {
	mu    sync.Mutex
	lines []string
}

func (p *process) tail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// startProcess starts path with args and env added to the test's environment, in a
// process group of its own; the test's end kills it (by its process group)
// and, when the test failed, logs its last lines.
func startProcess(t *testing.T, path string, args []string, env ...string) {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	p := &process{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pipe)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			if len(p.lines) > 30 {
				p.lines = p.lines[1:]
			}
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s, last lines:\n%s", filepath.Base(path), p.tail())
		}
	})
}

// startRedis starts a private redis-server on a free loopback port for the
// test and returns its URL. Without redis-server the test fails (skips only
// when TASKWIRE_SKIP_REDIS is set).
func startRedis(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("TASKWIRE_SKIP_REDIS") != "" && os.Getenv("TASKWIRE_REQUIRE_REDIS") == "" {
			t.Skip("redis-server is not installed; skipped because TASKWIRE_SKIP_REDIS is set")
		}
		t.Fatal("this test needs redis-server on PATH (apt-get install redis-server)")
	}
	port := freePort(t)
	startProcess(t, path, []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", t.TempDir(), "--daemonize", "no", "--loglevel", "warning"})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	waitFor(ctx, t, "redis-server on "+addr, func() bool { return redisPing(addr) })
	return "redis://" + addr + "/0"
}

func redisPing(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	return err == nil && bytes.HasPrefix(line, []byte("+PONG"))
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
