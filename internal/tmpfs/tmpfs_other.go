//go:build !linux

package tmpfs

import (
	"os"
	"testing"
)

// Mount skips the test, or fails it under CI: mounting a tmpfs is wired
// up on Linux only.
func Mount(t testing.TB, size int64) string {
	t.Helper()
	msg := "cannot mount a tmpfs: Linux only"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// Free is not reached: Mount has skipped the test.
func Free(t testing.TB, dir string) int64 {
	t.Helper()
	t.Fatal("tmpfs: Linux only")
	return 0
}

// Fill is not reached: Mount has skipped the test.
func Fill(t testing.TB, dir, name string, leave int64) string {
	t.Helper()
	t.Fatal("tmpfs: Linux only")
	return ""
}
