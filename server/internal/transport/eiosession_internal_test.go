package transport

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
)

func TestCompactRequestRoundTrip(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/socket.io/?EIO=4&transport=websocket&x=%C3%A9", nil)
	r.Header.Set("Cookie", "a=1; b=2")
	r.Header.Add("X-Multi", "one")
	r.Header.Add("X-Multi", "two, three")
	r.Header.Set("Empty", "")
	r.RemoteAddr = "192.0.2.1:1234"
	r.TLS = &tls.ConnectionState{}
	got := compactRequestOf(r).request()
	if got.Method != r.Method || got.RequestURI != r.RequestURI || got.Host != r.Host || got.RemoteAddr != r.RemoteAddr || got.TLS != r.TLS {
		t.Fatalf("request line: %+v", got)
	}
	if got.URL.Query().Get("x") != "é" || got.URL.Query().Get("transport") != "websocket" {
		t.Fatalf("query %v", got.URL.Query())
	}
	if !reflect.DeepEqual(got.Header, r.Header) {
		t.Fatalf("headers %v, want %v", got.Header, r.Header)
	}
	if got.Context().Err() == nil {
		t.Fatal("the context of a rebuilt request must be done (no goroutine waits on it)")
	}
}
