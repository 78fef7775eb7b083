package client

import (
	"errors"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// MinSecretBytes is the shortest JWT secret the server accepts
// (TASKWIRE_JWT_SECRET).
const MinSecretBytes = 32

// MaxSubjectLen bounds a subject (the JWT's "sub", a task's subject).
const MaxSubjectLen = 256

// TokenOption configures SignUserToken.
type TokenOption func(*tokenConfig)

type tokenConfig struct {
	method   jwt.SigningMethod
	issuer   string
	audience string
	now      func() time.Time
}

// WithIssuer sets the token's "iss": what the server's TASKWIRE_JWT_ISSUER
// expects, when set.
func WithIssuer(iss string) TokenOption {
	return func(c *tokenConfig) { c.issuer = iss }
}

// WithAudience sets the token's "aud": what the server's
// TASKWIRE_JWT_AUDIENCE expects, when set.
func WithAudience(aud string) TokenOption {
	return func(c *tokenConfig) { c.audience = aud }
}

// WithHS384 signs with HS384 instead of HS256.
func WithHS384() TokenOption {
	return func(c *tokenConfig) { c.method = jwt.SigningMethodHS384 }
}

// WithHS512 signs with HS512 instead of HS256.
func WithHS512() TokenOption {
	return func(c *tokenConfig) { c.method = jwt.SigningMethodHS512 }
}

// withClock makes SignUserToken read the time from now (tests).
func withClock(now func() time.Time) TokenOption {
	return func(c *tokenConfig) { c.now = now }
}

// SignUserToken returns a JWT for the app's user subject, valid for ttl,
// signed with HS256 (WithHS384, WithHS512) and secret, the server's
// TASKWIRE_JWT_SECRET: its "sub" is subject, "iat" now and "exp" now + ttl
// (whole seconds), with "iss" and "aud" when given. The page hands it to
// @taskwire/client, which asks for a new one before it expires: keep ttl short
// (minutes) and serve fresh tokens to the logged-in user.
func SignUserToken(secret []byte, subject string, ttl time.Duration, opts ...TokenOption) (string, error) {
	cfg := tokenConfig{method: jwt.SigningMethodHS256, now: time.Now}
	for _, o := range opts {
		o(&cfg)
	}
	if len(secret) < MinSecretBytes {
		return "", fmt.Errorf("taskwire: the JWT secret must have at least %d bytes, it has %d", MinSecretBytes, len(secret))
	}
	if !validSubject(subject) {
		return "", fmt.Errorf("taskwire: the subject must be 1 to %d bytes of UTF-8 without control characters", MaxSubjectLen)
	}
	if ttl < time.Second {
		return "", errors.New("taskwire: a token must live at least a second")
	}
	now := cfg.now().Truncate(time.Second)
	claims := jwt.RegisteredClaims{
		Subject:   subject,
		Issuer:    cfg.issuer,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}
	if cfg.audience != "" {
		claims.Audience = jwt.ClaimStrings{cfg.audience}
	}
	token, err := jwt.NewWithClaims(cfg.method, claims).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("taskwire: sign the token: %w", err)
	}
	return token, nil
}

// validSubject reports whether s may be an identity for the server: 1 to
// MaxSubjectLen bytes of UTF-8 without control characters.
func validSubject(s string) bool {
	if s == "" || len(s) > MaxSubjectLen || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}
