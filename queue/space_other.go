//go:build !linux

package queue

// statfs is not wired up on this platform: the spool has no free-space
// floor there, and relies on undoing writes that fail with ENOSPC.
var statfs func(dir string) (free, total int64, err error)
