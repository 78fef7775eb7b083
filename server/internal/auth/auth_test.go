package auth_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/taskwire/taskwire/server/internal/auth"
	"github.com/taskwire/taskwire/server/internal/session"
)

var (
	jwtSecret    = []byte("app-jwt-secret-0123456789abcdef0123456789")
	serverSecret = bytes.Repeat([]byte("s"), 32)
)

func sign(t *testing.T, m jwt.SigningMethod, key any, c jwt.MapClaims, kid string) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func userClaims(sub string, exp time.Duration) jwt.MapClaims {
	return jwt.MapClaims{"sub": sub, "exp": time.Now().Add(exp).Unix(), "iss": "https://app.example", "aud": "taskwire"}
}

func newVerifier(t *testing.T, cfg auth.Config) *auth.Verifier {
	t.Helper()
	v, err := auth.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func wantRefused(t *testing.T, v *auth.Verifier, token, reason string) {
	t.Helper()
	p, err := v.Verify(context.Background(), token)
	if err == nil {
		t.Fatalf("accepted as %+v, want refused (%s)", p, reason)
	}
	var ae *auth.Error
	if !errors.Is(err, auth.ErrUnauthorized) || !errors.As(err, &ae) {
		t.Fatalf("err = %v, want an *auth.Error", err)
	}
	if !strings.Contains(ae.Reason, reason) {
		t.Fatalf("reason = %q, want it to say %q", ae.Reason, reason)
	}
	if token != "" && strings.Contains(err.Error(), token) {
		t.Fatalf("the error holds the token: %v", err)
	}
}

func TestJWTSecret(t *testing.T) {
	v := newVerifier(t, auth.Config{JWTSecret: jwtSecret, Issuer: "https://app.example", Audience: "taskwire"})
	for _, m := range []jwt.SigningMethod{jwt.SigningMethodHS256, jwt.SigningMethodHS384, jwt.SigningMethodHS512} {
		p, err := v.Verify(context.Background(), sign(t, m, jwtSecret, userClaims("u-42", time.Minute), ""))
		if err != nil {
			t.Fatalf("%s: %v", m.Alg(), err)
		}
		if p.Identity != "u-42" || p.Kind != auth.KindUser || p.ExpiresAt.IsZero() {
			t.Fatalf("%s: principal %+v", m.Alg(), p)
		}
	}

	good := sign(t, jwt.SigningMethodHS256, jwtSecret, userClaims("u-42", time.Minute), "")
	parts := strings.Split(good, ".")
	payload, _ := json.Marshal(userClaims("u-1", time.Minute))
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]
	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	none := noneHeader + "." + parts[1] + "."
	noExp := userClaims("u-42", 0)
	delete(noExp, "exp")
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)

	cases := []struct{ name, token, reason string }{
		{"expired", sign(t, jwt.SigningMethodHS256, jwtSecret, userClaims("u-42", -time.Hour), ""), "expired"},
		{"tampered", tampered, "bad signature"},
		{"wrong key", sign(t, jwt.SigningMethodHS256, []byte("another-secret-0123456789abcdef01234"), userClaims("u-42", time.Minute), ""), "bad signature"},
		{"alg none", none, "alg none"},
		{"alg NONE", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"NONE","typ":"JWT"}`)) + "." + parts[1] + ".", "alg none"},
		{"alg None with a signature", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"None"}`)) + "." + parts[1] + "." + parts[2], "alg none"},
		{"no alg", base64.RawURLEncoding.EncodeToString([]byte(`{"typ":"JWT"}`)) + "." + parts[1] + "." + parts[2], "alg none"},
		{"unknown alg", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"XS256"}`)) + "." + parts[1] + "." + parts[2], "unknown algorithm"},
		{"alg none by the library", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, userClaims("u-42", time.Minute), ""), "alg none"},
		{"wrong issuer", sign(t, jwt.SigningMethodHS256, jwtSecret, jwt.MapClaims{"sub": "u", "exp": time.Now().Add(time.Minute).Unix(), "iss": "evil", "aud": "taskwire"}, ""), "wrong issuer"},
		{"wrong audience", sign(t, jwt.SigningMethodHS256, jwtSecret, jwt.MapClaims{"sub": "u", "exp": time.Now().Add(time.Minute).Unix(), "iss": "https://app.example", "aud": "other"}, ""), "wrong audience"},
		{"no exp", sign(t, jwt.SigningMethodHS256, jwtSecret, noExp, ""), `token has no "exp"`},
		{"no iss", sign(t, jwt.SigningMethodHS256, jwtSecret, jwt.MapClaims{"sub": "u", "exp": time.Now().Add(time.Minute).Unix(), "aud": "taskwire"}, ""), `token has no "iss"`},
		{"no aud", sign(t, jwt.SigningMethodHS256, jwtSecret, jwt.MapClaims{"sub": "u", "exp": time.Now().Add(time.Minute).Unix(), "iss": "https://app.example"}, ""), `token has no "aud"`},
		{"no sub", sign(t, jwt.SigningMethodHS256, jwtSecret, userClaims("", time.Minute), ""), `"sub"`},
		{"control character in sub", sign(t, jwt.SigningMethodHS256, jwtSecret, userClaims("u\x00", time.Minute), ""), `"sub"`},
		{"not yet valid", sign(t, jwt.SigningMethodHS256, jwtSecret, jwt.MapClaims{"sub": "u", "exp": time.Now().Add(time.Hour).Unix(), "nbf": time.Now().Add(time.Hour).Unix(), "iss": "https://app.example", "aud": "taskwire"}, ""), "not valid yet"},
		{"RS256 without a JWKS", sign(t, jwt.SigningMethodRS256, rsaKey, userClaims("u-42", time.Minute), ""), "no JWKS"},
		{"garbage", "a.b.c", "malformed"},
		{"anonymous token while anonymous sessions are off", "v1.AAAAAAAAAAAAAAAAAAAAAA." + strings.Repeat("A", 43), "turned off"},
		{"API key while none is configured", "twk_abc", "malformed"},
		{"empty", "", "no token"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantRefused(t, v, c.token, c.reason) })
	}
}

func TestLeeway(t *testing.T) {
	v := newVerifier(t, auth.Config{JWTSecret: jwtSecret})
	// Expired 5 s ago: within the leeway.
	if _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodHS256, jwtSecret, userClaims("u", -5*time.Second), "")); err != nil {
		t.Fatalf("within the leeway: %v", err)
	}
	wantRefused(t, v, sign(t, jwt.SigningMethodHS256, jwtSecret, userClaims("u", -auth.DefaultLeeway-5*time.Second), ""), "expired")
}

// jwksServer serves a JWKS whose keys the test replaces, and counts fetches.
type jwksServer struct {
	mu      sync.Mutex
	keys    []map[string]string
	fetches atomic.Int32
	*httptest.Server
}

func newJWKSServer(t *testing.T) *jwksServer {
	s := &jwksServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": s.keys})
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(keys ...map[string]string) {
	s.mu.Lock()
	s.keys = keys
	s.mu.Unlock()
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(kid string, k *rsa.PublicKey) map[string]string {
	return map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
}

func ecJWK(kid string, k *ecdsa.PublicKey) map[string]string {
	raw, _ := k.Bytes() // 0x04 || X || Y
	return map[string]string{"kty": "EC", "kid": kid, "use": "sig", "alg": "ES256", "crv": "P-256", "x": b64(raw[1:33]), "y": b64(raw[33:])}
}

func edJWK(kid string, k ed25519.PublicKey) map[string]string {
	return map[string]string{"kty": "OKP", "kid": kid, "use": "sig", "alg": "EdDSA", "crv": "Ed25519", "x": b64(k)}
}

func TestJWKS(t *testing.T) {
	rsa1, _ := rsa.GenerateKey(rand.Reader, 2048)
	ec1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	srv := newJWKSServer(t)
	srv.set(rsaJWK("rsa-1", &rsa1.PublicKey), ecJWK("ec-1", &ec1.PublicKey), edJWK("ed-1", edPub))
	v := newVerifier(t, auth.Config{JWKSURL: srv.URL, Issuer: "https://app.example", Audience: "taskwire"})

	for _, c := range []struct {
		m   jwt.SigningMethod
		key any
		kid string
	}{{jwt.SigningMethodRS256, rsa1, "rsa-1"}, {jwt.SigningMethodES256, ec1, "ec-1"}, {jwt.SigningMethodEdDSA, edPriv, "ed-1"}} {
		p, err := v.Verify(context.Background(), sign(t, c.m, c.key, userClaims("u-42", time.Minute), c.kid))
		if err != nil {
			t.Fatalf("%s: %v", c.m.Alg(), err)
		}
		if p.Identity != "u-42" {
			t.Fatalf("%s: identity %q", c.m.Alg(), p.Identity)
		}
	}

	// Algorithm confusion: an HS256 token whose "secret" is the RSA public key
	// (as PEM and as the JWK's n), with the kid of the RSA key.
	der, _ := x509.MarshalPKIXPublicKey(&rsa1.PublicKey)
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	wantRefused(t, v, sign(t, jwt.SigningMethodHS256, pemKey, userClaims("u-42", time.Minute), "rsa-1"), "no JWT secret")
	wantRefused(t, v, sign(t, jwt.SigningMethodHS256, rsa1.N.Bytes(), userClaims("u-42", time.Minute), "rsa-1"), "no JWT secret")
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	wantRefused(t, v, sign(t, jwt.SigningMethodRS256, other, userClaims("u-42", time.Minute), "rsa-1"), "bad signature")
	wantRefused(t, v, sign(t, jwt.SigningMethodRS256, rsa1, userClaims("u-42", -time.Hour), "rsa-1"), "expired")
	// An ES256 token naming the RSA key: the JWK's alg does not match.
	wantRefused(t, v, sign(t, jwt.SigningMethodES256, ec1, userClaims("u-42", time.Minute), "rsa-1"), "no key")

	// Rotation: a token signed with a new key whose kid the cached set lacks
	// makes one fetch, and is accepted.
	rsa2, _ := rsa.GenerateKey(rand.Reader, 2048)
	srv.set(rsaJWK("rsa-2", &rsa2.PublicKey))
	before := srv.fetches.Load()
	if _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, rsa2, userClaims("u-42", time.Minute), "rsa-2")); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if n := srv.fetches.Load() - before; n != 1 {
		t.Fatalf("%d fetches for the new kid, want 1", n)
	}
	// Unknown kids right after: refused at once, no fetch (bounded rate).
	before = srv.fetches.Load()
	start := time.Now()
	for i := range 5 {
		wantRefused(t, v, sign(t, jwt.SigningMethodRS256, rsa2, userClaims("u-42", time.Minute), "made-up-"+string(rune('a'+i))), "no key")
	}
	if n := srv.fetches.Load() - before; n != 0 {
		t.Fatalf("%d fetches for made-up kids within the refresh interval, want 0", n)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("refusing unknown kids took %v", d)
	}
}

func TestHSAndJWKSTogether(t *testing.T) {
	rsa1, _ := rsa.GenerateKey(rand.Reader, 2048)
	srv := newJWKSServer(t)
	srv.set(rsaJWK("rsa-1", &rsa1.PublicKey))
	v := newVerifier(t, auth.Config{JWTSecret: jwtSecret, JWKSURL: srv.URL})
	for _, tok := range []string{
		sign(t, jwt.SigningMethodHS256, jwtSecret, userClaims("u-1", time.Minute), ""),
		sign(t, jwt.SigningMethodRS256, rsa1, userClaims("u-1", time.Minute), "rsa-1"),
	} {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	// The RSA public key used as an HMAC secret is still a bad signature.
	wantRefused(t, v, sign(t, jwt.SigningMethodHS256, rsa1.N.Bytes(), userClaims("u-1", time.Minute), "rsa-1"), "bad signature")
}

func TestViewerTokens(t *testing.T) {
	v := newVerifier(t, auth.Config{Secret: serverSecret, JWTSecret: jwtSecret})
	tok, exp, err := v.IssueViewer("t1", 10*time.Minute, true)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(exp); d < 9*time.Minute || d > 10*time.Minute {
		t.Fatalf("expiresAt in %v", d)
	}
	p, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.Kind != auth.KindViewer || p.TaskID != "t1" || !p.AllowResult || !strings.HasPrefix(p.Identity, "viewer:") {
		t.Fatalf("principal %+v", p)
	}
	if _, _, err := v.IssueViewer("t1", auth.MaxViewerTTL+time.Second, false); err == nil {
		t.Fatal("a TTL over the maximum was accepted")
	}

	// Another server secret: refused.
	w := newVerifier(t, auth.Config{Secret: bytes.Repeat([]byte("x"), 32), JWTSecret: jwtSecret})
	wantRefused(t, w, tok, "bad signature")

	// An app token that claims to be a viewer token (typ, audience, tid),
	// signed with the app's secret: refused.
	fake := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": auth.ViewerIssuer, "aud": auth.ViewerAudience,
		"tid": "t1", "jti": "x", "exp": time.Now().Add(time.Minute).Unix()})
	fake.Header["typ"] = auth.ViewerType
	s, _ := fake.SignedString(jwtSecret)
	wantRefused(t, v, s, "bad signature")
	// An app token with the viewer audience but no viewer typ: refused.
	wantRefused(t, v, sign(t, jwt.SigningMethodHS256, jwtSecret, jwt.MapClaims{"sub": "u", "aud": auth.ViewerAudience, "exp": time.Now().Add(time.Minute).Unix()}, ""), "wrong audience")
	// Expired viewer tokens.
	past := newVerifier(t, auth.Config{Secret: serverSecret, Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }})
	old, _, _ := past.IssueViewer("t1", time.Hour, false)
	wantRefused(t, v, old, "expired")
}

func TestAnonymousAndAPIKeys(t *testing.T) {
	signer, _ := session.NewSigner(serverSecret)
	key, hash := auth.NewAPIKey()
	key2, hash2 := auth.NewAPIKey()
	keys, err := auth.ParseAPIKeys("backend:" + hash + ", backend-next:" + hash2)
	if err != nil {
		t.Fatal(err)
	}
	v := newVerifier(t, auth.Config{Sessions: signer, APIKeys: keys})
	anon, id := signer.New()
	p, err := v.Verify(context.Background(), anon)
	if err != nil || p.Identity != id || p.Kind != auth.KindUser || !p.ExpiresAt.IsZero() {
		t.Fatalf("anonymous: %+v, %v", p, err)
	}
	for name, k := range map[string]string{"backend": key, "backend-next": key2} {
		p, err := v.Verify(context.Background(), k)
		if err != nil || p.Kind != auth.KindAPIKey || p.Identity != "apikey:"+name {
			t.Fatalf("key %s: %+v, %v", name, p, err)
		}
	}
	wantRefused(t, v, key+"x", "unknown API key")
	wantRefused(t, v, "v1.AAAAAAAAAAAAAAAAAAAAAA."+strings.Repeat("A", 43), "invalid session")
	// No JWT verification configured at all.
	wantRefused(t, v, sign(t, jwt.SigningMethodHS256, jwtSecret, userClaims("u", time.Minute), ""), "no JWT secret")

	sum := sha256.Sum256([]byte(key))
	if hex.EncodeToString(sum[:]) != hash {
		t.Fatal("NewAPIKey's hash is not the SHA-256 of the key")
	}
	for _, bad := range []string{"nocolon", "n:xyz", "n:" + strings.ToUpper(hash), "a:" + hash + ",a:" + hash2, "bad name:" + hash} {
		_, err := auth.ParseAPIKeys(bad)
		if err == nil {
			t.Errorf("ParseAPIKeys(%q) accepted it", bad)
			continue
		}
		if strings.Contains(err.Error(), hash) || strings.Contains(err.Error(), hash2) {
			t.Errorf("the error repeats a hash: %v", err)
		}
	}
}
