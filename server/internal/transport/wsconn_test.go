package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	gws "github.com/gorilla/websocket"
)

// wsPair returns the server side (a wsConn, like the transport makes) and the
// client side (a gorilla client) of a real websocket over loopback TCP.
func wsPair(t *testing.T, maxMessage int64, dialer *gws.Dialer) (*wsConn, *gws.Conn) {
	t.Helper()
	conns := make(chan net.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := (&gws.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		conns <- c.NetConn()
	}))
	t.Cleanup(srv.Close)
	if dialer == nil {
		dialer = gws.DefaultDialer
	}
	cc, _, err := dialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	var nc net.Conn
	select {
	case nc = <-conns:
	case <-time.After(5 * time.Second):
		t.Fatal("no server connection")
	}
	s := newWSConn(nc, maxMessage)
	t.Cleanup(s.abort)
	return s, cc
}

// readResult is what readMessage returned.
type readResult struct {
	text bool
	data []byte
	err  error
}

func readAsync(s *wsConn) <-chan readResult {
	ch := make(chan readResult, 1)
	go func() {
		text, data, err := s.readMessage()
		ch <- readResult{text, data, err}
	}()
	return ch
}

func await(t *testing.T, ch <-chan readResult) readResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("readMessage did not return within 5s")
		return readResult{}
	}
}

func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}

// Every length encoding (7-bit, 16-bit, 64-bit) both ways, text and binary.
func TestWSConnRoundTrip(t *testing.T) {
	s, c := wsPair(t, 0, nil)
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 300_000} {
		for _, text := range []bool{true, false} {
			mt := gws.BinaryMessage
			if text {
				mt = gws.TextMessage
			}
			want := payload(n)
			ch := readAsync(s)
			if err := c.WriteMessage(mt, want); err != nil {
				t.Fatal(err)
			}
			r := await(t, ch)
			if r.err != nil || r.text != text || !bytes.Equal(r.data, want) {
				t.Fatalf("server read n=%d text=%v: text=%v len=%d err=%v", n, text, r.text, len(r.data), r.err)
			}
			if err := s.write(text, want); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			gotType, got, err := c.ReadMessage()
			if err != nil || gotType != mt || !bytes.Equal(got, want) {
				t.Fatalf("client read n=%d: type %d len %d err %v", n, gotType, len(got), err)
			}
		}
	}
}

// A message in many frames (the client's write buffer is small) is reassembled,
// with a ping between its fragments answered.
func TestWSConnFragmentsAndPing(t *testing.T) {
	s, c := wsPair(t, 0, &gws.Dialer{WriteBufferSize: 256})
	pong := make(chan string, 1)
	c.SetPongHandler(func(data string) error { pong <- data; return nil })
	go func() {
		for { // the client must read for its pong handler to run
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}()
	want := payload(10_000)
	ch := readAsync(s)
	w, err := c.NextWriter(gws.TextMessage)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(want[:5000]); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteControl(gws.PingMessage, []byte("hello"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(want[5000:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r := await(t, ch)
	if r.err != nil || !r.text || !bytes.Equal(r.data, want) {
		t.Fatalf("reassembled: len %d err %v", len(r.data), r.err)
	}
	select {
	case p := <-pong:
		if p != "hello" {
			t.Fatalf("pong %q", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no pong")
	}
}

func closeCode(t *testing.T, c *gws.Conn) int {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *gws.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		t.Fatalf("client read: %v (want a close frame)", err)
	}
}

func TestWSConnPeerClose(t *testing.T) {
	s, c := wsPair(t, 0, nil)
	ch := readAsync(s)
	if err := c.WriteControl(gws.CloseMessage, gws.FormatCloseMessage(gws.CloseGoingAway, "bye"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if r := await(t, ch); !errors.Is(r.err, errPeerClosed) {
		t.Fatalf("err %v, want errPeerClosed", r.err)
	}
	if code := closeCode(t, c); code != gws.CloseGoingAway {
		t.Fatalf("close reply %d, want the client's code echoed", code)
	}
}

func TestWSConnServerClose(t *testing.T) {
	s, c := wsPair(t, 0, nil)
	if err := s.write(true, []byte("last")); err != nil {
		t.Fatal(err)
	}
	s.close(closeNormal)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, got, err := c.ReadMessage(); err != nil || string(got) != "last" {
		t.Fatalf("message before close: %q %v", got, err)
	}
	if code := closeCode(t, c); code != gws.CloseNormalClosure {
		t.Fatalf("close code %d", code)
	}
	if err := s.write(true, []byte("late")); err == nil {
		t.Fatal("write after close succeeded")
	}
}

func TestWSConnMessageTooBig(t *testing.T) {
	s, c := wsPair(t, 100, nil)
	ch := readAsync(s)
	if err := c.WriteMessage(gws.TextMessage, payload(101)); err != nil {
		t.Fatal(err)
	}
	if r := await(t, ch); !errors.Is(r.err, errTooBig) {
		t.Fatalf("err %v, want errTooBig", r.err)
	}
	if code := closeCode(t, c); code != gws.CloseMessageTooBig {
		t.Fatalf("close code %d", code)
	}
}

// Frames a client must never send close the connection with a protocol error.
func TestWSConnProtocolErrors(t *testing.T) {
	unmasked := []byte{finBit | opText, 2, 'h', 'i'}
	masked := func(b0 byte, p []byte) []byte {
		b := []byte{b0, maskBit | byte(len(p)), 1, 2, 3, 4}
		q := append([]byte(nil), p...)
		maskBytes([4]byte{1, 2, 3, 4}, 0, q)
		return append(b, q...)
	}
	cases := map[string][]byte{
		"unmasked":              unmasked,
		"reserved bits":         masked(finBit|0x40|opText, []byte("x")),
		"unknown opcode":        masked(finBit|0x3, []byte("x")),
		"continuation first":    masked(finBit|opContinuation, []byte("x")),
		"fragmented control":    masked(opPing, []byte("x")),
		"new message in middle": append(masked(opText, []byte("a")), masked(finBit|opText, []byte("b"))...),
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			s, c := wsPair(t, 0, nil)
			ch := readAsync(s)
			if _, err := c.NetConn().Write(raw); err != nil {
				t.Fatal(err)
			}
			if r := await(t, ch); !errors.Is(r.err, errProtocol) {
				t.Fatalf("err %v, want errProtocol", r.err)
			}
			if code := closeCode(t, c); code != gws.CloseProtocolError {
				t.Fatalf("close code %d", code)
			}
		})
	}
}

// Frames written while the client does not read are queued and arrive whole and
// in order once it reads: the writer goroutine's path.
func TestWSConnBacklogInOrder(t *testing.T) {
	s, c := wsPair(t, 0, nil)
	const n = 5000
	body := payload(1000)
	for i := range n {
		msg := binary.BigEndian.AppendUint32(nil, uint32(i))
		if err := s.write(false, append(msg, body...)); err != nil {
			t.Fatal(err)
		}
	}
	if !s.backlogged() {
		t.Log("nothing was queued: the socket buffers took everything (the test proves less)")
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i := range n {
		_, got, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if seq := binary.BigEndian.Uint32(got); seq != uint32(i) || !bytes.Equal(got[4:], body) {
			t.Fatalf("message %d: got seq %d", i, seq)
		}
	}
}

// Writers on many goroutines, a frame shared by all of them: each goroutine's
// messages arrive in its order, nothing is lost or torn.
func TestWSConnConcurrentWriters(t *testing.T) {
	s, c := wsPair(t, 0, nil)
	const writers, each = 8, 500
	shared := Frame(true, []byte("shared"))
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := s.write(true, fmt.Appendf(nil, "%d:%d", w, i)); err != nil {
					t.Error(err)
					return
				}
				if err := s.writeFrame(shared); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	next := make([]int, writers)
	sharedSeen := 0
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for range 2 * writers * each {
		_, got, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if string(got) == "shared" {
			sharedSeen++
			continue
		}
		var w, i int
		if _, err := fmt.Sscanf(string(got), "%d:%d", &w, &i); err != nil || w >= writers || i != next[w] {
			t.Fatalf("got %q, want writer %d message %d", got, w, next[w])
		}
		next[w]++
	}
	wg.Wait()
	if sharedSeen != writers*each {
		t.Fatalf("shared frames %d", sharedSeen)
	}
}

// A client that reads nothing cannot make the server hold more than
// maxQueuedBytes for it: the connection is closed.
func TestWSConnSlowConsumerClosed(t *testing.T) {
	s, _ := wsPair(t, 0, nil)
	body := payload(64 << 10)
	var err error
	for i := 0; i < 4*maxQueuedBytes/len(body) && err == nil; i++ {
		err = s.write(false, body)
	}
	if !errors.Is(err, errSlowConsumer) {
		t.Fatalf("err %v, want errSlowConsumer", err)
	}
	if err := s.write(false, body); err == nil {
		t.Fatal("write after the bound succeeded")
	}
}

func TestMaskBytes(t *testing.T) {
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	for _, n := range []int{0, 1, 7, 8, 15, 16, 17, 100, 1001} {
		for start := range 4 {
			in := payload(n)
			want := append([]byte(nil), in...)
			for i := range want {
				want[i] ^= key[(start+i)&3]
			}
			got := append([]byte(nil), in...)
			if next := maskBytes(key, start, got); next != (start+n)&3 || !bytes.Equal(got, want) {
				t.Fatalf("n=%d start=%d: next %d", n, start, next)
			}
		}
	}
}

func TestFrameHeader(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		f := Frame(true, payload(n))
		if len(f) != frameHeaderLen(n)+n || f[0] != finBit|opText {
			t.Fatalf("n=%d: len %d header %x", n, len(f), f[:2])
		}
	}
}

func TestFrameInPlace(t *testing.T) {
	for _, n := range []int{0, 5, 125, 126, 70000} {
		b := append(make([]byte, maxFrameHeader), payload(n)...)
		if got, want := FrameInPlace(b, maxFrameHeader), Frame(true, payload(n)); !bytes.Equal(got, want) {
			t.Fatalf("n=%d: frame differs", n)
		}
	}
}
