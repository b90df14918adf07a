package queue

import (
	"os"

	"golang.org/x/sys/unix"
)

// fdatasync makes a file's data durable, with the metadata needed to read
// it (its length) but not the rest (its modification time), as on Linux.
// FreeBSD has had fdatasync(2) since 11.1, older than any release Go
// supports, but x/sys/unix has no wrapper for it.
func fdatasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			_, _, e := unix.Syscall(unix.SYS_FDATASYNC, fd, 0, 0)
			if e != unix.EINTR {
				if e != 0 {
					serr = e
				}
				return
			}
		}
	}); err != nil {
		return err
	}
	return serr
}
