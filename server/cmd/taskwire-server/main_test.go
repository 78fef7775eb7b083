package main

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/taskwire/taskwire/server/internal/auth"
)

func TestAPIKeyNew(t *testing.T) {
	var stdout, stderr strings.Builder
	if code := cli(context.Background(), []string{"apikey", "new", "billing"}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	key := regexp.MustCompile(`(?m)^key \(.*\): (\S+)$`).FindStringSubmatch(stdout.String())
	entry := regexp.MustCompile(`(?m)^TASKWIRE_API_KEYS entry \(.*\): (\S+)$`).FindStringSubmatch(stdout.String())
	if key == nil || entry == nil {
		t.Fatalf("output: %q", stdout.String())
	}
	// The entry is accepted by the parser of TASKWIRE_API_KEYS, and names the key.
	keys, err := auth.ParseAPIKeys(entry[1])
	if err != nil {
		t.Fatalf("entry %q: %v", entry[1], err)
	}
	if len(keys) != 1 || !strings.HasPrefix(entry[1], "billing:") {
		t.Fatalf("entry %q parsed as %v", entry[1], keys)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{{"serve"}, {"apikey", "new"}, {"apikey", "old", "x"}} {
		var stdout, stderr strings.Builder
		if code := cli(context.Background(), args, nil, &stdout, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
		if !strings.HasPrefix(stderr.String(), "usage: ") {
			t.Errorf("%q: stderr %q", args, stderr.String())
		}
	}
}

func TestBadConfigurationExits2(t *testing.T) {
	var stdout, stderr strings.Builder
	getenv := func(k string) string {
		if k == "TASK_TTL" {
			return "3600"
		}
		return ""
	}
	if code := cli(context.Background(), nil, getenv, &stdout, &stderr); code != 2 {
		t.Fatalf("exit %d, want 2; stderr %q", code, stderr.String())
	}
	if got := stderr.String(); !strings.HasPrefix(got, "taskwire-server: configuration: ") || !strings.Contains(got, "TASK_TTL") {
		t.Fatalf("stderr %q", got)
	}
}
