// Package auth maps the bearer tokens taskwire accepts to a Principal: who the
// caller is and what it may do.
//
// Four kinds of token are accepted, told apart by their shape:
//
//   - an anonymous session token ("v1.<id>.<mac>", package session), when
//     anonymous sessions are on;
//   - a JWT the app signed: HS256/384/512 with the shared JWT secret, or
//     RS256/384/512, PS256/384/512, ES256/384/512 or EdDSA with a key of the app's
//     JWKS. Its "sub" is the identity; "exp" is required; "iss" and "aud" are
//     checked when configured;
//   - an API key of a backend, whose SHA-256 is configured (the server never
//     holds the key itself); it may act on any task, for any subject;
//   - a viewer token that this server signed (IssueViewer): one task, read-only.
//
// A viewer token is an HS256 JWT with the header "typ" ViewerType, issuer
// ViewerIssuer and audience ViewerAudience, signed with a key derived from the
// server secret: it is never verified as an app token, and no app token is
// verified as one.
package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"

	"github.com/taskwire/taskwire/server/internal/session"
)

// Kind is what a principal is.
type Kind string

// Kinds of principal.
const (
	// KindUser is an identity: an anonymous session or the subject of an app JWT.
	KindUser Kind = "user"
	// KindAPIKey is a backend holding an API key: any task, for any subject.
	KindAPIKey Kind = "apikey"
	// KindViewer holds a viewer token: one task, read-only.
	KindViewer Kind = "viewer"
)

// Principal is who a token speaks for.
type Principal struct {
	// Identity owns the tasks a user starts: the anonymous id or the JWT's
	// "sub". For an API key it is "apikey:<name>", for a viewer
	// "viewer:<token id>"; neither ever owns a task.
	Identity string
	Kind     Kind
	// TaskID is the one task a viewer may see.
	TaskID string
	// AllowResult says whether a viewer may download the task's result.
	AllowResult bool
	// ExpiresAt is when the token expires; zero for tokens that do not
	// (anonymous sessions, API keys).
	ExpiresAt time.Time
}

// Viewer token constants: its header "typ", issuer and audience.
const (
	ViewerType     = "taskwire-viewer+jwt"
	ViewerIssuer   = "taskwire"
	ViewerAudience = "taskwire:viewer"
)

// Bounds of viewer token lifetimes.
const (
	DefaultViewerTTL = time.Hour
	MaxViewerTTL     = 7 * 24 * time.Hour
)

// DefaultLeeway is the clock skew allowed on "exp", "nbf" and "iat" of JWTs
// when Config.Leeway is 0.
const DefaultLeeway = 30 * time.Second

// JWKSRefreshMinInterval is the least time between two fetches of the JWKS
// caused by tokens naming a key id the cached set does not have: a stream of
// tokens with made-up key ids costs at most one fetch per interval.
const JWKSRefreshMinInterval = 10 * time.Second

// MaxSubjectLen bounds identities (JWT "sub", the "subject" of an API key's
// task).
const MaxSubjectLen = 256

// APIKeyPrefix starts every key NewAPIKey makes.
const APIKeyPrefix = "twk_"

// ErrUnauthorized is what every refusal matches (errors.Is). Its *Error says why.
var ErrUnauthorized = errors.New("auth: unauthorized")

// Error is a refused token, with a reason that may be shown to its holder
// ("token expired", "wrong issuer"...). It never holds the token.
type Error struct {
	Reason string
}

func (e *Error) Error() string { return "auth: unauthorized: " + e.Reason }

// Is reports whether target is ErrUnauthorized.
func (e *Error) Is(target error) bool { return target == ErrUnauthorized }

func refuse(reason string) error { return &Error{Reason: reason} }

// APIKey is one configured key: its name and the SHA-256 of the key.
type APIKey struct {
	Name string
	Hash [sha256.Size]byte
}

// Config configures a Verifier.
type Config struct {
	// Sessions verifies anonymous session tokens; nil refuses them
	// (ANONYMOUS_SESSIONS=false).
	Sessions *session.Signer
	// Secret is the server secret (TASKWIRE_SECRET); viewer tokens are signed
	// with a key derived from it. Empty: no viewer tokens.
	Secret []byte
	// JWTSecret verifies app JWTs signed with HS256, HS384 or HS512.
	JWTSecret []byte
	// JWKSURL is the app's JWKS endpoint: its keys verify app JWTs signed with
	// RS*, PS*, ES* or EdDSA. It is fetched by New, every hour, and when a token
	// names an unknown key id (at most once per JWKSRefreshMinInterval).
	JWKSURL string
	// HTTPClient fetches the JWKS (default: a client with a 10 s timeout).
	HTTPClient *http.Client
	// Issuer and Audience, when set, must be the JWT's "iss" and one of its
	// "aud".
	Issuer, Audience string
	// Leeway is the clock skew allowed (default DefaultLeeway).
	Leeway time.Duration
	// APIKeys are the accepted API keys.
	APIKeys []APIKey
	// Logger receives JWKS fetch errors (never a token).
	Logger *slog.Logger
	// Now returns the current time (default time.Now).
	Now func() time.Time
}

// Verifier checks tokens. It is safe for concurrent use.
type Verifier struct {
	cfg       Config
	viewerKey []byte
	jwks      keyfunc.Keyfunc
	hsMethods []string
	pkMethods []string
}

// New returns a Verifier. With a JWKSURL it starts fetching the key set, until
// ctx is done; a first fetch that fails is logged, not fatal (it is retried on
// the first token).
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = DefaultLeeway
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	v := &Verifier{cfg: cfg}
	if len(cfg.Secret) > 0 {
		m := hmac.New(sha256.New, cfg.Secret)
		m.Write([]byte("taskwire viewer tokens v1"))
		v.viewerKey = m.Sum(nil)
	}
	if len(cfg.JWTSecret) > 0 {
		v.hsMethods = []string{"HS256", "HS384", "HS512"}
	}
	if cfg.JWKSURL != "" {
		client := cfg.HTTPClient
		if client == nil {
			client = &http.Client{Timeout: 10 * time.Second}
		}
		log := cfg.Logger
		jwks, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{cfg.JWKSURL}, keyfunc.Override{
			Client:            client,
			RefreshInterval:   time.Hour,
			RefreshUnknownKID: rate.NewLimiter(rate.Every(JWKSRefreshMinInterval), 1),
			// The library fetches under the same deadline as it waits for the
			// limiter: it must leave room for a real fetch. A token with an
			// unknown key id whose fetch is more than this away is refused at
			// once (the limiter tells without waiting); one closer waits for it.
			RateLimitWaitMax: JWKSRefreshMinInterval / 2,
			RefreshErrorHandlerFunc: func(string) func(context.Context, error) {
				return func(ctx context.Context, err error) {
					log.WarnContext(ctx, "auth: fetching the JWKS failed", "err", err)
				}
			},
		})
		if err != nil {
			return nil, fmt.Errorf("auth: JWKS: %w", err)
		}
		v.jwks = jwks
		v.pkMethods = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
	}
	return v, nil
}

// AnonymousSessions reports whether anonymous session tokens are accepted.
func (v *Verifier) AnonymousSessions() bool { return v.cfg.Sessions != nil }

// Verify returns the principal of token, or an error matching
// ErrUnauthorized (an *Error that says why).
func (v *Verifier) Verify(ctx context.Context, token string) (*Principal, error) {
	switch {
	case token == "":
		return nil, refuse("no token")
	case strings.HasPrefix(token, "v1."): // a JWT starts with "ey" (base64 of `{"`)
		if v.cfg.Sessions == nil {
			return nil, refuse("anonymous sessions are turned off: use a token of the app")
		}
		id, err := v.cfg.Sessions.Verify(token)
		if err != nil {
			return nil, refuse("invalid session token")
		}
		return &Principal{Identity: id, Kind: KindUser}, nil
	case strings.Count(token, ".") == 2:
		return v.verifyJWT(ctx, token)
	default:
		return v.verifyAPIKey(token)
	}
}

func (v *Verifier) verifyAPIKey(token string) (*Principal, error) {
	if len(v.cfg.APIKeys) == 0 {
		return nil, refuse("malformed token")
	}
	sum := sha256.Sum256([]byte(token))
	found := -1
	for i := range v.cfg.APIKeys {
		// Every key is compared, and each in constant time.
		if subtle.ConstantTimeCompare(sum[:], v.cfg.APIKeys[i].Hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return nil, refuse("unknown API key")
	}
	return &Principal{Identity: "apikey:" + v.cfg.APIKeys[found].Name, Kind: KindAPIKey}, nil
}

// claims are the claims taskwire reads of a JWT: the registered ones, and a
// viewer token's task and result permission.
type claims struct {
	jwt.RegisteredClaims
	TaskID      string `json:"tid,omitempty"`
	AllowResult bool   `json:"res,omitempty"`
}

func (v *Verifier) verifyJWT(ctx context.Context, token string) (*Principal, error) {
	// The header says which verification applies; nothing in it is believed
	// beyond that choice, and each choice allows only its own algorithms.
	unverified, _, err := jwt.NewParser().ParseUnverified(token, &claims{})
	if err != nil {
		// The library knows no such algorithm: "NONE", "None"... are the
		// unsigned tokens of alg none, spelt to slip past a check.
		if errors.Is(err, jwt.ErrTokenUnverifiable) && unverified != nil {
			if alg, _ := unverified.Header["alg"].(string); alg == "" || strings.EqualFold(alg, "none") {
				return nil, refuse("unsigned tokens (alg none) are not accepted")
			}
			return nil, refuse("unknown algorithm")
		}
		return nil, refuse("malformed token")
	}
	alg, _ := unverified.Header["alg"].(string)
	if typ, _ := unverified.Header["typ"].(string); typ == ViewerType {
		return v.verifyViewer(token)
	}
	var methods []string
	var key jwt.Keyfunc
	switch {
	case alg == "" || strings.EqualFold(alg, "none"):
		return nil, refuse("unsigned tokens (alg none) are not accepted")
	case strings.HasPrefix(alg, "HS"):
		if v.hsMethods == nil {
			return nil, refuse("algorithm " + alg + " is not accepted: no JWT secret is configured")
		}
		methods = v.hsMethods
		key = func(*jwt.Token) (any, error) { return v.cfg.JWTSecret, nil }
	default:
		if v.jwks == nil {
			return nil, refuse("algorithm " + alg + " is not accepted: no JWKS is configured")
		}
		methods = v.pkMethods
		key = v.jwks.KeyfuncCtx(ctx)
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(v.cfg.Leeway),
		jwt.WithTimeFunc(v.cfg.Now),
	}
	if v.cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(v.cfg.Issuer))
	}
	if v.cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(v.cfg.Audience))
	}
	var c claims
	if _, err := jwt.ParseWithClaims(token, &c, key, opts...); err != nil {
		return nil, jwtError(err)
	}
	if slices.Contains(c.Audience, ViewerAudience) {
		return nil, refuse("wrong audience")
	}
	if !ValidSubject(c.Subject) {
		return nil, refuse(`"sub" must be 1 to 256 printable characters`)
	}
	return &Principal{Identity: c.Subject, Kind: KindUser, ExpiresAt: c.ExpiresAt.Time}, nil
}

func (v *Verifier) verifyViewer(token string) (*Principal, error) {
	if v.viewerKey == nil {
		return nil, refuse("viewer tokens are not accepted")
	}
	var c claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return v.viewerKey, nil },
		jwt.WithValidMethods([]string{"HS256"}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(v.cfg.Leeway),
		jwt.WithTimeFunc(v.cfg.Now),
		jwt.WithIssuer(ViewerIssuer),
		jwt.WithAudience(ViewerAudience),
	)
	if err != nil {
		return nil, jwtError(err)
	}
	if c.TaskID == "" || c.ID == "" {
		return nil, refuse("malformed viewer token")
	}
	return &Principal{Identity: "viewer:" + c.ID, Kind: KindViewer, TaskID: c.TaskID,
		AllowResult: c.AllowResult, ExpiresAt: c.ExpiresAt.Time}, nil
}

// jwtError turns a refusal of the jwt library into an *Error with a short
// reason.
func jwtError(err error) error {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return refuse("token expired")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		// Required are "exp", and "iss" and "aud" when configured; the
		// library names the missing one only in its message.
		for _, claim := range []string{"exp", "iss", "aud"} {
			if strings.Contains(err.Error(), claim+" claim is required") {
				return refuse(`token has no "` + claim + `"`)
			}
		}
		return refuse("token lacks a required claim")
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return refuse("token not valid yet")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return refuse("wrong issuer")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return refuse("wrong audience")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return refuse("bad signature")
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return refuse("no key to verify the token (unknown key id or algorithm)")
	case errors.Is(err, jwt.ErrTokenMalformed):
		return refuse("malformed token")
	}
	return refuse("invalid token")
}

// IssueViewer signs a viewer token for task taskID, valid for ttl (0:
// DefaultViewerTTL; at most MaxViewerTTL).
func (v *Verifier) IssueViewer(taskID string, ttl time.Duration, allowResult bool) (token string, expiresAt time.Time, err error) {
	if v.viewerKey == nil {
		return "", time.Time{}, errors.New("auth: no secret to sign viewer tokens with")
	}
	if ttl == 0 {
		ttl = DefaultViewerTTL
	}
	if ttl < 0 || ttl > MaxViewerTTL {
		return "", time.Time{}, fmt.Errorf("auth: a viewer token lives at most %v", MaxViewerTTL)
	}
	now := v.cfg.Now()
	expiresAt = now.Add(ttl).Truncate(time.Second)
	var id [12]byte
	_, _ = rand.Read(id[:])
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    ViewerIssuer,
			Audience:  jwt.ClaimStrings{ViewerAudience},
			ID:        base64.RawURLEncoding.EncodeToString(id[:]),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(expiresAt),
		},
		TaskID:      taskID,
		AllowResult: allowResult,
	})
	t.Header["typ"] = ViewerType
	token, err = t.SignedString(v.viewerKey)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("auth: sign viewer token: %w", err)
	}
	return token, expiresAt, nil
}

// ValidSubject reports whether s may be an identity: 1 to MaxSubjectLen
// bytes of UTF-8 without control characters.
func ValidSubject(s string) bool {
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

// NewAPIKey returns a new random API key and the lowercase hex SHA-256 that
// TASKWIRE_API_KEYS holds for it.
func NewAPIKey() (key, hash string) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	key = APIKeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(key))
	return key, hex.EncodeToString(sum[:])
}

// ParseAPIKeys parses TASKWIRE_API_KEYS: comma-separated "name:sha256hex".
func ParseAPIKeys(s string) ([]APIKey, error) {
	var keys []APIKey
	seen := map[string]bool{}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, h, ok := strings.Cut(item, ":")
		if !ok || name == "" || !validKeyName(name) {
			return nil, fmt.Errorf("%q is not name:sha256hex (a name of letters, digits, '-', '_' or '.')", safePrefix(item))
		}
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != sha256.Size || strings.ToLower(h) != h {
			return nil, fmt.Errorf("the hash of key %q is not 64 lowercase hex digits (the SHA-256 of the key; taskwire-server apikey new %s makes one)", name, name)
		}
		if seen[name] {
			return nil, fmt.Errorf("key name %q appears twice", name)
		}
		seen[name] = true
		k := APIKey{Name: name}
		copy(k.Hash[:], b)
		keys = append(keys, k)
	}
	return keys, nil
}

func validKeyName(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// safePrefix keeps a malformed entry out of error messages beyond its name
// part: someone may have pasted a key instead of its hash.
func safePrefix(item string) string {
	if name, _, ok := strings.Cut(item, ":"); ok {
		return name + ":..."
	}
	return "(an entry without ':')"
}
