package statuslog

import "golang.org/x/sys/unix"

// FreeKB returns the KiB free for an unprivileged writer on the file
// system of dir, -1 when it cannot be read.
func FreeKB(dir string) int64 {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return -1
	}
	return int64(st.Bavail) * int64(st.Bsize) / 1024
}
