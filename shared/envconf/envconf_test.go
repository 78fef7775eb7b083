package envconf

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestTaskTTL(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", DefaultTaskTTL, true},
		{"1m", time.Minute, true},
		{"48h", 48 * time.Hour, true},
		{"20s", 0, false},
		{"59s", 0, false},
		{"0", 0, false},
		{"-1h", 0, false},
		{"9000h", 0, false},
		{"soon", 0, false},
	} {
		got, err := TaskTTL(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("TaskTTL(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestOthers(t *testing.T) {
	if l, err := LogLevel("WARNING"); err != nil || l != slog.LevelWarn {
		t.Errorf("LogLevel(WARNING) = %v, %v", l, err)
	}
	if _, err := LogLevel("loud"); err == nil {
		t.Error("LogLevel(loud) accepted")
	}
	if k, err := SocketIOKey(""); err != nil || k != DefaultSocketIOKey {
		t.Errorf("SocketIOKey(\"\") = %q, %v", k, err)
	}
	for _, bad := range []string{"a#b", "a*", "a b"} {
		if _, err := SocketIOKey(bad); err == nil {
			t.Errorf("SocketIOKey(%q) accepted", bad)
		}
		if _, err := Prefix(bad + "{"); err == nil {
			t.Errorf("Prefix(%q) accepted", bad+"{")
		}
	}
	if a, err := SocketIOAdapter(""); err != nil || a != "classic" {
		t.Errorf("SocketIOAdapter(\"\") = %q, %v", a, err)
	}
	if _, err := SocketIOAdapter("fast"); err == nil {
		t.Error("SocketIOAdapter(fast) accepted")
	}
}

func TestRedisURL(t *testing.T) {
	u, opts, err := RedisURL("")
	if err != nil || u != DefaultRedisURL || opts.Addr != "127.0.0.1:6379" {
		t.Fatalf("RedisURL(\"\") = %q, %+v, %v", u, opts, err)
	}
	if _, opts, err := RedisURL("rediss://me:pw@cache:6380/2"); err != nil || opts.Addr != "cache:6380" || opts.DB != 2 || opts.Password != "pw" || opts.TLSConfig == nil {
		t.Fatalf("rediss URL: %+v, %v", opts, err)
	}
	for _, bad := range []string{"http://me:s3cret@cache:6379", "redis://me:s3cret@cache:6379/x", "redis://cache:6379/0?password=s3cret&dial_timeout=nope"} {
		_, _, err := RedisURL(bad)
		if err == nil {
			t.Errorf("RedisURL(%q) accepted", bad)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("RedisURL(%q): the error shows the password: %v", bad, err)
		}
	}
	if got := MaskURL("redis://me:s3cret@cache:6379/0?password=s3cret"); strings.Contains(got, "s3cret") {
		t.Errorf("MaskURL: %q", got)
	}
}
