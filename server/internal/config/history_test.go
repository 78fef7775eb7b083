package config

import (
	"strings"
	"testing"
)

func TestTaskHistoryLimit(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil || c.TaskHistoryLimit != DefaultTaskHistoryLimit || DefaultTaskHistoryLimit != 2000 {
		t.Fatalf("default: %v %v", c, err)
	}
	for s, want := range map[string]int{"0": 0, "1": 1, "50": 50, "100000": 100000} {
		c, err := Load(env(map[string]string{"TASK_HISTORY_LIMIT": s}))
		if err != nil || c.TaskHistoryLimit != want {
			t.Errorf("TASK_HISTORY_LIMIT=%s: %v %v", s, c, err)
		}
	}
	for _, bad := range []string{"-1", "100001", "1.5", "many", " 5", "1e3"} {
		_, err := Load(env(map[string]string{"TASK_HISTORY_LIMIT": bad}))
		if err == nil || !strings.Contains(err.Error(), "TASK_HISTORY_LIMIT") {
			t.Errorf("TASK_HISTORY_LIMIT=%q: %v", bad, err)
		}
	}
}
