//go:build linux || darwin || openbsd

package queue

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// pwritevAll writes the buffers of iov one after another at off, in as few
// system calls as IOV_MAX allows. It may change iov.
func pwritevAll(f *os.File, iov [][]byte, off int64) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	for len(iov) > 0 {
		chunk := iov[:min(len(iov), iovMax)]
		var n int
		var werr error
		if err := rc.Write(func(fd uintptr) bool {
			n, werr = unix.Pwritev(int(fd), chunk, off)
			return true
		}); err != nil {
			return err
		}
		if werr == unix.EINTR {
			continue
		}
		if werr != nil {
			return werr
		}
		if n == 0 {
			return errors.New("pwritev wrote nothing")
		}
		off += int64(n)
		// Drop what was written; a short write leaves a partial buffer.
		for n > 0 {
			if n >= len(iov[0]) {
				n -= len(iov[0])
				iov = iov[1:]
				continue
			}
			iov[0] = iov[0][n:]
			n = 0
		}
	}
	return nil
}
