package transport

import (
	"net/url"
	"testing"
)

// FuzzQuery checks Query against url.ParseQuery: the same first value and the
// same presence for every key, whatever the raw query.
func FuzzQuery(f *testing.F) {
	for _, s := range []string{
		"EIO=4&transport=polling&t=PAbc",
		"EIO=4&transport=polling&sid=abc-_DEF&t=x",
		"sid=&sid=second",
		"a%3Db=1&sid=a%2Bb+c",
		"sid=%zz&sid=ok",
		"j=0&EIO=4",
		"x;y=1&sid=s",
		"&&=&sid",
		"",
	} {
		f.Add(s, "sid")
	}
	f.Fuzz(func(t *testing.T, raw, key string) {
		want, _ := url.ParseQuery(raw) // the values it could parse, as it keeps them
		got, ok := Query(raw).Lookup(key)
		vs, present := want[key]
		if ok != present {
			t.Fatalf("Lookup(%q) in %q: present %v, url.ParseQuery %v", key, raw, ok, present)
		}
		if present && got != vs[0] {
			t.Fatalf("Lookup(%q) in %q = %q, url.ParseQuery %q", key, raw, got, vs[0])
		}
	})
}

func BenchmarkQuery(b *testing.B) {
	const raw = "EIO=4&transport=polling&t=PbDcY0x&sid=Q9Zb1cX3fH7aK2mN"
	u := &url.URL{RawQuery: raw}
	b.Run("Query", func(b *testing.B) {
		for b.Loop() {
			q := QueryOf(u)
			_ = q.Get("EIO") == "4" && !q.Has("j") && q.Get("sid") != "" && q.Get("transport") == "polling"
		}
	})
	b.Run("url.Values", func(b *testing.B) {
		for b.Loop() {
			q := u.Query()
			_ = q.Get("EIO") == "4" && !q.Has("j") && q.Get("sid") != "" && q.Get("transport") == "polling"
		}
	})
}
