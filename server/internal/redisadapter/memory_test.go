package redisadapter

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/zishang520/engine.io/v2/types"
	"github.com/zishang520/socket.io/v2/socket"
)

// recordEvents returns the index's events as "name room [id]" lines.
func recordEvents(m *memory) func() []string {
	var mu sync.Mutex
	var got []string
	for _, name := range []string{"create-room", "join-room", "leave-room", "delete-room"} {
		_ = m.On(types.EventName(name), func(args ...any) {
			line := name
			for _, a := range args {
				line += fmt.Sprint(" ", a)
			}
			mu.Lock()
			got = append(got, line)
			mu.Unlock()
		})
	}
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := got
		got = nil
		return out
	}
}

func joinAll(m *memory, id string, rooms ...string) {
	m.AddAll(socket.SocketId(id), roomSet(rooms))
}

func TestMemoryEventsLikeSocketIO(t *testing.T) {
	m := newMemory()
	events := recordEvents(m)

	joinAll(m, "a", "a", "lobby")
	want := []string{"create-room a", "join-room a a", "create-room lobby", "join-room lobby a"}
	if got := events(); !slices.Equal(got, want) && !slices.Equal(got, append(want[2:4:4], want[:2]...)) {
		t.Fatalf("events of a first join:\n got %q\nwant %q (rooms in any order)", got, want)
	}
	joinAll(m, "b", "lobby")
	if got := events(); !slices.Equal(got, []string{"join-room lobby b"}) {
		t.Fatalf("events of a join to an existing room: %q", got)
	}
	joinAll(m, "b", "lobby")
	if got := events(); len(got) != 0 {
		t.Fatalf("joining again emitted %q", got)
	}
	m.Del("a", "lobby")
	if got := events(); !slices.Equal(got, []string{"leave-room lobby a"}) {
		t.Fatalf("events of a leave from a room that stays: %q", got)
	}
	m.Del("a", "lobby")
	m.Del("nobody", "lobby")
	if got := events(); len(got) != 0 {
		t.Fatalf("leaving a room one is not in emitted %q", got)
	}
	m.DelAll("b")
	if got := events(); !slices.Equal(got, []string{"leave-room lobby b", "delete-room lobby"}) {
		t.Fatalf("events of the last socket leaving: %q", got)
	}
	m.DelAll("b")
	if got := events(); len(got) != 0 {
		t.Fatalf("DelAll of an unknown socket emitted %q", got)
	}
	if !m.HasRoom("a") || m.HasRoom("lobby") {
		t.Fatalf("rooms after the leaves: %v", m.LocalRooms(""))
	}
}

// TestMemoryMatchesAModel applies random joins and leaves to the index and to a
// plain model of sets, and compares every view after each step.
func TestMemoryMatchesAModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	m := newMemory()
	model := map[string]map[string]bool{} // socket -> rooms
	ids := []string{"s1", "s2", "s3", "s4", "s5"}
	rooms := []string{"r1", "r2", "r3", "s1"}
	for step := range 3000 {
		id := ids[rng.IntN(len(ids))]
		room := rooms[rng.IntN(len(rooms))]
		var op string
		switch rng.IntN(10) {
		case 0:
			op = "delall " + id
			m.DelAll(socket.SocketId(id))
			delete(model, id)
		case 1, 2, 3:
			op = "del " + id + " " + room
			m.Del(socket.SocketId(id), socket.Room(room))
			delete(model[id], room)
		default:
			other := rooms[rng.IntN(len(rooms))]
			op = "join " + id + " " + room + "," + other
			joinAll(m, id, room, other)
			if model[id] == nil {
				model[id] = map[string]bool{}
			}
			model[id][room], model[id][other] = true, true
		}
		// By room, from the model.
		want := map[string][]string{}
		for id, rs := range model {
			for r := range rs {
				want[r] = append(want[r], id)
			}
		}
		got := map[string][]string{}
		m.Rooms().Range(func(r socket.Room, set *types.Set[socket.SocketId]) bool {
			for _, id := range set.Keys() {
				got[string(r)] = append(got[string(r)], string(id))
			}
			return true
		})
		for _, l := range want {
			slices.Sort(l)
		}
		for _, l := range got {
			slices.Sort(l)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("step %d (%s): rooms\n got %v\nwant %v", step, op, got, want)
		}
		local := m.LocalRooms("")
		slices.Sort(local)
		keys := make([]string, 0, len(want))
		for r := range want {
			keys = append(keys, r)
		}
		slices.Sort(keys)
		if !slices.Equal(local, keys) {
			t.Fatalf("step %d (%s): LocalRooms %v, want %v", step, op, local, keys)
		}
		for _, id := range ids {
			rs := m.SocketRooms(socket.SocketId(id))
			_, known := model[id]
			if known != (rs != nil) {
				t.Fatalf("step %d (%s): SocketRooms(%s) = %v, socket known: %v", step, op, id, rs, known)
			}
			if rs == nil {
				continue
			}
			var gotRooms, wantRooms []string
			for _, r := range rs.Keys() {
				gotRooms = append(gotRooms, string(r))
			}
			for r := range model[id] {
				wantRooms = append(wantRooms, r)
			}
			slices.Sort(gotRooms)
			slices.Sort(wantRooms)
			if !slices.Equal(gotRooms, wantRooms) {
				t.Fatalf("step %d (%s): rooms of %s %v, want %v", step, op, id, gotRooms, wantRooms)
			}
		}
	}
}

// TestMemoryConcurrentUse joins, leaves and reads from many goroutines (run with
// -race); listeners read the index while it changes.
func TestMemoryConcurrentUse(t *testing.T) {
	m := newMemory()
	_ = m.On("create-room", func(args ...any) { m.HasRoom(args[0].(socket.Room)) })
	_ = m.On("delete-room", func(args ...any) { m.hasSocket(socket.SocketId(args[0].(socket.Room))) })
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				id := "s" + strconv.Itoa(g*1000+i%50)
				joinAll(m, id, id, "all", "g"+strconv.Itoa(i%7))
				m.LocalRooms("g")
				m.SocketRooms(socket.SocketId(id))
				if i%3 == 0 {
					m.Del(socket.SocketId(id), "all")
				}
				if i%5 == 0 {
					m.DelAll(socket.SocketId(id))
				}
			}
		})
	}
	wg.Wait()
	for g := range 8 {
		for i := range 50 {
			m.DelAll(socket.SocketId("s" + strconv.Itoa(g*1000+i)))
		}
	}
	if rooms := m.LocalRooms(""); len(rooms) != 0 {
		t.Fatalf("rooms left after every socket left: %v", rooms)
	}
}

// BenchmarkRoomIndexMemory reports the heap one socket in three rooms (its id,
// its user's, one of its own) costs in the index, against socket.io-go's
// in-memory adapter.
func BenchmarkRoomIndexMemory(b *testing.B) {
	const n = 10_000
	ids := make([]socket.SocketId, n)
	rooms := make([]*types.Set[socket.Room], n)
	for i := range ids {
		ids[i] = socket.SocketId(fmt.Sprintf("%020d", i))
		rooms[i] = types.NewSet(socket.Room(ids[i]), socket.Room(fmt.Sprintf("user:%016d", i)), socket.Room(fmt.Sprintf("sock:%016d", i)))
	}
	heap := func() uint64 {
		runtime.GC()
		var s runtime.MemStats
		runtime.ReadMemStats(&s)
		return s.HeapAlloc
	}
	for _, c := range []struct {
		name string
		new  func() interface {
			AddAll(socket.SocketId, *types.Set[socket.Room])
		}
	}{
		{"taskwire", func() interface {
			AddAll(socket.SocketId, *types.Set[socket.Room])
		} {
			return newMemory()
		}},
		{"socket.io-go", func() interface {
			AddAll(socket.SocketId, *types.Set[socket.Room])
		} {
			return socket.MakeAdapter()
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var per float64
			for b.Loop() {
				before := heap()
				idx := c.new()
				for i, id := range ids {
					idx.AddAll(id, rooms[i])
				}
				per = float64(heap()-before) / n
				runtime.KeepAlive(idx)
			}
			b.ReportMetric(per, "B/socket")
		})
	}
}
