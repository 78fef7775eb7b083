package adminui

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"time"
)

// credential checks what the Admin UI sends in its handshake: the "basic"
// login's password (the operator token; the user name is not checked) or a
// session id issued by an earlier login.
//
// Session ids are stateless, so that one issued by any replica opens every
// replica: "s1." followed by the base64url of an 8-byte expiry (Unix seconds),
// 16 random bytes and an HMAC-SHA256 of both under a key derived from the token.
// Changing ADMIN_TOKEN ends every session.
type credential struct {
	token  []byte // the operator token
	key    []byte // HMAC key of session ids
	ttl    time.Duration
	now    func() time.Time
	random func([]byte) (int, error)
}

const sessionPrefix = "s1."

// sessionBytes is the length of a decoded session id: expiry, nonce, MAC.
const sessionBytes = 8 + 16 + sha256.Size

func newCredential(token []byte, ttl time.Duration, now func() time.Time) *credential {
	m := hmac.New(sha256.New, token)
	m.Write([]byte("taskwire admin-ui session key"))
	return &credential{token: token, key: m.Sum(nil), ttl: ttl, now: now, random: rand.Read}
}

// password reports whether p is the operator token, in constant time (the
// comparison is of digests, so that not even the length is told).
func (c *credential) password(p string) bool {
	if p == "" {
		return false
	}
	want := sha256.Sum256(c.token)
	got := sha256.Sum256([]byte(p))
	return subtle.ConstantTimeCompare(want[:], got[:]) == 1
}

// issue returns a new session id, valid for the credential's ttl.
func (c *credential) issue() (string, error) {
	b := make([]byte, sessionBytes)
	binary.BigEndian.PutUint64(b, uint64(c.now().Add(c.ttl).Unix()))
	if _, err := c.random(b[8:24]); err != nil {
		return "", err
	}
	copy(b[24:], c.mac(b[:24]))
	return sessionPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// session reports whether id is a session id this token issued that has not
// expired.
func (c *credential) session(id string) bool {
	if len(id) <= len(sessionPrefix) || id[:len(sessionPrefix)] != sessionPrefix {
		return false
	}
	// Strict: the unused bits of the last character must be zero, so that
	// each session has one spelling and no changed character passes.
	b, err := base64.RawURLEncoding.Strict().DecodeString(id[len(sessionPrefix):])
	if err != nil || len(b) != sessionBytes {
		return false
	}
	if !hmac.Equal(b[24:], c.mac(b[:24])) {
		return false
	}
	exp := int64(binary.BigEndian.Uint64(b))
	return c.now().Unix() < exp
}

func (c *credential) mac(b []byte) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write(b)
	return m.Sum(nil)
}
