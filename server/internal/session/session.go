// Package session issues and checks the anonymous identities of taskwire.
//
// A token is "v1.<id>.<mac>": id is 128 random bits (URL-safe base64, 22
// characters) and is the identity; mac is HMAC-SHA256 of "v1.<id>" under the
// server secret (URL-safe base64, 43 characters). Every replica that shares the
// secret accepts the tokens of the others. Tokens do not expire; rotate the secret
// to invalidate all of them.
package session

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
)

// CookieName is the name of the cookie that carries the token in browsers.
const CookieName = "taskwire_session"

// MinSecretLen is the minimum length of a secret, in bytes.
const MinSecretLen = 32

// ErrInvalidToken is returned for tokens that are malformed or not signed with the
// secret.
var ErrInvalidToken = errors.New("session: invalid token")

// ErrShortSecret is returned by NewSigner for secrets shorter than MinSecretLen.
var ErrShortSecret = errors.New("session: secret must be at least 32 bytes")

const version = "v1"

// Signer issues and verifies tokens. It is safe for concurrent use.
type Signer struct {
	key []byte
}

// NewSigner returns a Signer for secret.
func NewSigner(secret []byte) (*Signer, error) {
	if len(secret) < MinSecretLen {
		return nil, ErrShortSecret
	}
	return &Signer{key: append([]byte(nil), secret...)}, nil
}

// RandomSecret returns a new random secret of MinSecretLen bytes.
func RandomSecret() []byte {
	b := make([]byte, MinSecretLen)
	_, _ = rand.Read(b)
	return b
}

// New issues a token for a new identity and returns both.
func (s *Signer) New() (token, identity string) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	identity = base64.RawURLEncoding.EncodeToString(b[:])
	return version + "." + identity + "." + s.mac(identity), identity
}

// Verify checks token and returns its identity. The comparison of signatures takes
// the same time whatever the input.
func (s *Signer) Verify(token string) (string, error) {
	if len(token) != len(version)+1+22+1+43 {
		return "", ErrInvalidToken
	}
	v, rest, ok := strings.Cut(token, ".")
	if !ok || v != version {
		return "", ErrInvalidToken
	}
	identity, mac, ok := strings.Cut(rest, ".")
	if !ok || len(identity) != 22 || len(mac) != 43 {
		return "", ErrInvalidToken
	}
	if _, err := base64.RawURLEncoding.DecodeString(identity); err != nil {
		return "", ErrInvalidToken
	}
	want := s.mac(identity)
	if !hmac.Equal([]byte(mac), []byte(want)) {
		return "", ErrInvalidToken
	}
	return identity, nil
}

func (s *Signer) mac(identity string) string {
	h := hmac.New(sha256.New, s.key)
	h.Write([]byte(version + "." + identity))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}
