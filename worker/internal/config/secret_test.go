package config

import (
	"strings"
	"testing"
)

// TestRedisURLErrorHidesPassword: a REDIS_URL that does not parse is reported
// without its password (net/url's own errors quote the whole URL).
func TestRedisURLErrorHidesPassword(t *testing.T) {
	for _, u := range []string{
		"redis://user:hunter2-secret@host:notaport/0",
		"redis://user:hunter2-secret@host:6379/notadb",
		"rediss://:hunter2-secret@host:6379/0?dial_timeout=never",
		"redis://user:hunter2 secret@host/0",
	} {
		_, err := Load(func(k string) string {
			if k == "REDIS_URL" {
				return u
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), "REDIS_URL") {
			t.Fatalf("%s: err = %v", u, err)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
}
