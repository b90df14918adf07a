//go:build !linux && !freebsd

package queue

import "os"

// fdatasync makes a file's data durable. Where the spool has no
// fdatasync(2) it uses os.File.Sync, which also commits the metadata (the
// modification time): as durable, a little more work per commit. On macOS
// Sync is fcntl(F_FULLFSYNC), which also empties the drive's write cache;
// macOS's fsync(2) does not, so a power cut could lose acknowledged
// messages. Emptying the drive's cache is slow; the group commit spreads
// that over the messages of a batch.
func fdatasync(f *os.File) error {
	return f.Sync()
}
