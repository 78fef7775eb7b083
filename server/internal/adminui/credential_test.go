package adminui

import (
	"strings"
	"testing"
	"time"
)

const testToken = "operator-token-operator-token-0123456789"

func TestPassword(t *testing.T) {
	c := newCredential([]byte(testToken), time.Hour, time.Now)
	for _, tc := range []struct {
		pw   string
		want bool
	}{
		{testToken, true},
		{"", false},
		{testToken + "x", false},
		{testToken[:len(testToken)-1], false},
		{"v1.a-user-session-token", false},
	} {
		if got := c.password(tc.pw); got != tc.want {
			t.Errorf("password(%q) = %v, want %v", tc.pw, got, tc.want)
		}
	}
}

func TestSession(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	c := newCredential([]byte(testToken), time.Hour, clock)
	id, err := c.issue()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(id, sessionPrefix) || strings.Contains(id, testToken) {
		t.Fatalf("session id %q", id)
	}
	if !c.session(id) {
		t.Fatal("a fresh session id is refused")
	}
	// Another replica with the same token accepts it.
	if !newCredential([]byte(testToken), time.Hour, clock).session(id) {
		t.Fatal("a replica with the same token refuses the session id")
	}
	// Another token does not.
	if newCredential([]byte(testToken+"-rotated"), time.Hour, clock).session(id) {
		t.Fatal("a session id survives a change of token")
	}
	// Tampered with: every character changed in turn is refused.
	for i := len(sessionPrefix); i < len(id); i++ {
		b := []byte(id)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		if c.session(string(b)) {
			t.Fatalf("tampered session id (byte %d) accepted", i)
		}
	}
	for _, bad := range []string{"", sessionPrefix, "s2." + id[3:], id + "A", testToken} {
		if c.session(bad) {
			t.Errorf("session(%q) accepted", bad)
		}
	}
	now = now.Add(time.Hour)
	if c.session(id) {
		t.Fatal("an expired session id is accepted")
	}
}

func testTime(sec int64) time.Time { return time.Unix(1_800_000_000+sec, 0) }
