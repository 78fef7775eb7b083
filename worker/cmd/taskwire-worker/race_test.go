//go:build race

package main

// raceBuild builds the worker under test with the race detector when the tests
// run with it, so the process-level scenarios are checked for races too.
const raceBuild = true
