package transport

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/taskwire/taskwire/shared/testwait"

	gws "github.com/gorilla/websocket"
)

// clientFrame is a masked client frame.
func clientFrame(op byte, fin bool, payload []byte, key [4]byte) []byte {
	b0 := op
	if fin {
		b0 |= finBit
	}
	b := []byte{b0}
	n := len(payload)
	switch {
	case n <= 125:
		b = append(b, maskBit|byte(n))
	case n <= 0xffff:
		b = append(b, maskBit|126, byte(n>>8), byte(n))
	default:
		b = append(b, maskBit|127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	b = append(b, key[:]...)
	p := append([]byte(nil), payload...)
	maskBytes(key, 0, p)
	return append(b, p...)
}

type gotMessage struct {
	text bool
	data string
}

// Whatever sizes the network cuts the stream into, consume hands over the same
// messages: whole, fragmented, with control frames in between, every length
// encoding.
func TestConsumeAnySplit(t *testing.T) {
	key := [4]byte{9, 8, 7, 6}
	var stream []byte
	var want []gotMessage
	for i, n := range []int{0, 1, 5, 125, 126, 300, 65535, 65536, 70_000} {
		p := payload(n)
		text := i%2 == 0
		op := byte(opBinary)
		if text {
			op = opText
		}
		stream = append(stream, clientFrame(op, true, p, key)...)
		want = append(want, gotMessage{text, string(p)})
		// The same as three fragments with a ping in the middle.
		a, b := n/3, 2*n/3
		stream = append(stream, clientFrame(op, false, p[:a], key)...)
		stream = append(stream, clientFrame(opPing, true, []byte("hb"), key)...)
		stream = append(stream, clientFrame(opContinuation, false, p[a:b], key)...)
		stream = append(stream, clientFrame(opContinuation, true, p[b:], key)...)
		want = append(want, gotMessage{text, string(p)})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, chunk := range []int{1, 2, 3, 7, 64, 1000, 16 << 10, len(stream)} {
		t.Run(fmt.Sprint(chunk), func(t *testing.T) {
			s, c := wsPair(t, 0, nil)
			go func() { // the client reads the pongs
				for {
					if _, _, err := c.ReadMessage(); err != nil {
						return
					}
				}
			}()
			var got []gotMessage
			on := func(text bool, data []byte) bool {
				got = append(got, gotMessage{text, string(data)})
				return true
			}
			for rest := stream; len(rest) > 0; {
				n := min(len(rest), chunk)
				if chunk == 3 {
					n = min(len(rest), 1+rng.IntN(100)) // random cuts
				}
				// consume may change the bytes it is given (it unmasks).
				if cont, err := s.consume(append([]byte(nil), rest[:n]...), on); !cont || err != nil {
					t.Fatalf("consume stopped: %v", err)
				}
				rest = rest[n:]
			}
			if len(got) != len(want) {
				t.Fatalf("%d messages, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("message %d: text=%v len=%d, want text=%v len=%d", i, got[i].text, len(got[i].data), want[i].text, len(want[i].data))
				}
			}
			if s.rs != nil {
				t.Fatal("read state kept after a complete stream")
			}
		})
	}
}

func TestConsumeErrors(t *testing.T) {
	key := [4]byte{1, 2, 3, 4}
	nop := func(bool, []byte) bool { return true }
	cases := map[string]struct {
		frames []byte
		max    int64
		err    error
	}{
		"unmasked":         {[]byte{finBit | opText, 1, 'x'}, 0, errProtocol},
		"too big at once":  {clientFrame(opText, true, payload(200), key), 100, errTooBig},
		"too big in parts": {append(clientFrame(opText, false, payload(60), key), clientFrame(opContinuation, true, payload(60), key)...), 100, errTooBig},
		"close":            {clientFrame(opClose, true, []byte{3, 232}, key), 0, errPeerClosed},
		"long control":     {clientFrame(opPing, true, payload(126), key), 0, errProtocol},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s, _ := wsPair(t, tc.max, nil)
			if _, err := s.consume(tc.frames, nop); !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
		})
	}
}

// recorder collects what a reading connection hands over.
type recorder struct {
	mu    sync.Mutex
	msgs  []string
	ended chan error
}

func newRecorder() *recorder { return &recorder{ended: make(chan error, 1)} }

func (r *recorder) onMessage(_ bool, data []byte) bool {
	r.mu.Lock()
	r.msgs = append(r.msgs, string(data))
	r.mu.Unlock()
	return true
}

func (r *recorder) onEnd(err error) { r.ended <- err }

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

// Both readers (the poller and a goroutine per connection): messages arrive in
// order, and the end of the connection, by either side, is reported once.
func TestStartReading(t *testing.T) {
	for _, polled := range []bool{true, false} {
		t.Run(fmt.Sprintf("poller=%v", polled), func(t *testing.T) {
			if !polled {
				pollerEnabled = false
				t.Cleanup(func() { pollerEnabled = true })
			}
			for _, closer := range []string{"client", "server"} {
				t.Run(closer, func(t *testing.T) {
					s, c := wsPair(t, 0, nil)
					r := newRecorder()
					s.startReading(r.onMessage, r.onEnd)
					const n = 500
					for i := range n {
						if err := c.WriteMessage(gws.TextMessage, fmt.Appendf(nil, "%d", i)); err != nil {
							t.Fatal(err)
						}
					}
					testwait.For(t, 10*time.Second, "all messages", func() bool { return r.count() == n })
					for i, m := range r.msgs {
						if m != fmt.Sprint(i) {
							t.Fatalf("message %d is %q", i, m)
						}
					}
					if closer == "client" {
						_ = c.Close()
					} else {
						s.close(closeNormal)
					}
					select {
					case err := <-r.ended:
						if !isClosedConn(err) {
							t.Fatalf("end reported as %v, want a close", err)
						}
					case <-time.After(5 * time.Second):
						t.Fatal("end not reported")
					}
					select {
					case err := <-r.ended:
						t.Fatalf("end reported twice (%v)", err)
					case <-time.After(50 * time.Millisecond):
					}
				})
			}
		})
	}
}

// Many polled connections at once, each with its own messages: none is lost or
// delivered to another connection, while connections come and go.
func TestPollerManyConnections(t *testing.T) {
	const conns, each = 64, 100
	var wg sync.WaitGroup
	for i := range conns {
		s, c := wsPair(t, 0, nil)
		r := newRecorder()
		s.startReading(r.onMessage, r.onEnd)
		wg.Go(func() {
			for j := range each {
				msg := fmt.Appendf(nil, "%d:%d:%s", i, j, bytes.Repeat([]byte("x"), j*37))
				if err := c.WriteMessage(gws.BinaryMessage, msg); err != nil {
					t.Error(err)
					return
				}
			}
			testwait.For(t, 10*time.Second, fmt.Sprintf("connection %d", i), func() bool { return r.count() == each })
			for j, m := range r.msgs {
				if want := fmt.Sprintf("%d:%d:", i, j); !bytes.HasPrefix([]byte(m), []byte(want)) {
					t.Errorf("connection %d message %d: %.20q", i, j, m)
					return
				}
			}
			_ = c.Close()
			<-r.ended
		})
	}
	wg.Wait()
}
