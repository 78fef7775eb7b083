// Package redistest starts throwaway redis-server processes for tests.
//
// Each Server is a real redis-server on a free loopback port, with no persistence,
// owned by one test and stopped when the test ends. Tests that need fault injection
// can Stop and Restart it (same port) or Pause it.
//
// When redis-server is not installed the tests that need it fail, saying so: a
// plain `go test ./...` never passes by skipping them. To skip them on purpose
// (a machine without Redis), set TASKWIRE_SKIP_REDIS=1; each skipped test then
// says what did not run.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Server is a redis-server process started for a test.
type Server struct {
	// Addr is host:port.
	Addr string
	// URL is a redis:// URL for Addr, database 0.
	URL string

	tb   testing.TB
	port int
	args []string
	dir  string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Start starts a redis-server on a free port and stops it when tb ends. Extra
// arguments are passed on the command line (for example "--maxmemory", "10mb").
func Start(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("TASKWIRE_SKIP_REDIS") != "" {
			tb.Skip("redistest: redis-server not installed; skipped because TASKWIRE_SKIP_REDIS is set")
		}
		tb.Fatalf("redistest: this test needs redis-server on PATH (apt-get install redis-server); " +
			"set TASKWIRE_SKIP_REDIS=1 to skip the tests that need it")
	}
	s := &Server{tb: tb, args: extra, dir: tb.TempDir()}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			tb.Fatalf("redistest: %v", err)
		}
		s.port = port
		s.Addr = "127.0.0.1:" + strconv.Itoa(port)
		s.URL = "redis://" + s.Addr + "/0"
		if lastErr = s.start(path); lastErr == nil {
			tb.Cleanup(s.Stop)
			return s
		}
	}
	tb.Fatalf("redistest: could not start redis-server: %v", lastErr)
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) start(path string) error {
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--daemonize", "no",
		"--loglevel", "warning",
	}
	args = append(args, s.args...)
	cmd := exec.Command(path, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return err
	}
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
		close(lines)
	}()
	if err := waitReady(s.Addr, 10*time.Second); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		var log []string
		for l := range lines {
			log = append(log, l)
		}
		return fmt.Errorf("%v; output: %s", err, strings.Join(log, " | "))
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	return nil
}

// waitReady waits until the server answers PING.
func waitReady(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if err := ping(addr); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("redis at %s not ready after %v: %w", addr, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("unexpected reply %q", line)
	}
	return nil
}

// Stop kills the server. It is safe to call more than once.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()
}

// Restart stops the server and starts it again on the same port, with an empty
// dataset (nothing is persisted).
func (s *Server) Restart() {
	s.tb.Helper()
	s.Stop()
	path, _ := exec.LookPath("redis-server")
	var err error
	for i := 0; i < 50; i++ {
		if err = s.start(path); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.tb.Fatalf("redistest: restart on %s: %v", s.Addr, err)
}

// Pause makes the server unresponsive for d (CLIENT PAUSE ALL), without closing
// connections; commands block until the pause ends.
func (s *Server) Pause(ctx context.Context, d time.Duration) error {
	return s.Do(ctx, "CLIENT", "PAUSE", strconv.FormatInt(d.Milliseconds(), 10), "ALL")
}

// Do sends one command over a fresh connection and fails when Redis answers with an
// error. It needs no client library, so every module's tests can use it.
func (s *Server) Do(ctx context.Context, args ...string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	} else {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.HasPrefix(line, "-") {
		return fmt.Errorf("redis: %s", strings.TrimSpace(line[1:]))
	}
	return nil
}
