package session

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	s, err := NewSigner(bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatal(err)
	}
	tok, id := s.New()
	got, err := s.Verify(tok)
	if err != nil || got != id {
		t.Fatalf("Verify(%q) = %q, %v; want %q", tok, got, err, id)
	}
	other, _ := NewSigner(bytes.Repeat([]byte("x"), 32))
	if _, err := other.Verify(tok); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("token accepted under another secret: %v", err)
	}
}

func TestRejects(t *testing.T) {
	s, _ := NewSigner(bytes.Repeat([]byte("k"), 32))
	tok, _ := s.New()
	flip := []byte(tok)
	flip[len(flip)-1] ^= 1
	cases := map[string]string{
		"empty":         "",
		"garbage":       "hello",
		"flipped mac":   string(flip),
		"wrong version": "v2" + tok[2:],
		"no dots":       strings.ReplaceAll(tok, ".", "x"),
		"truncated":     tok[:len(tok)-1],
		"longer":        tok + "A",
		"bad identity":  "v1.!!!!!!!!!!!!!!!!!!!!!!" + tok[25:],
	}
	for name, in := range cases {
		if _, err := s.Verify(in); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s: Verify(%q) err = %v, want ErrInvalidToken", name, in, err)
		}
	}
}

func TestShortSecret(t *testing.T) {
	if _, err := NewSigner([]byte("short")); !errors.Is(err, ErrShortSecret) {
		t.Fatalf("err = %v", err)
	}
}

func FuzzVerify(f *testing.F) {
	s, _ := NewSigner(bytes.Repeat([]byte("k"), 32))
	tok, _ := s.New()
	f.Add(tok)
	f.Add("")
	f.Add("v1..")
	f.Fuzz(func(t *testing.T, in string) {
		id, err := s.Verify(in)
		if err == nil && in != "v1."+id+"."+s.mac(id) {
			t.Fatalf("accepted a token that is not ours: %q", in)
		}
	})
}
