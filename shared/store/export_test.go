package store

import "testing"

// UseFullScript makes every update of the test take updateScript, as it was
// before eventScript took the common case.
func UseFullScript(t testing.TB) {
	fullScriptOnly = true
	t.Cleanup(func() { fullScriptOnly = false })
}

// EventScriptHash is the SHA1 of eventScript.
func EventScriptHash() string { return eventScript.Hash() }
