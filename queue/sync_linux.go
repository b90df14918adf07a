package queue

import (
	"os"

	"golang.org/x/sys/unix"
)

// fdatasync makes a file's data durable, with the metadata needed to read
// it (its length) but not the rest (its modification time).
func fdatasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			if serr = unix.Fdatasync(int(fd)); serr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	return serr
}
