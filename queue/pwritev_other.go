//go:build !linux && !darwin && !openbsd

package queue

import "os"

// pwritevAll writes the buffers of iov one after another at off. x/sys/unix
// has pwritev(2) for Linux, macOS and OpenBSD only; elsewhere (FreeBSD)
// each buffer is its own pwrite(2).
func pwritevAll(f *os.File, iov [][]byte, off int64) error {
	return writeEach(f, iov, off)
}
