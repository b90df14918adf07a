//go:build darwin || freebsd

package control

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// peerUID is the user of the process at the other end of c, as the kernel
// recorded it when that process connected (LOCAL_PEERCRED, the BSDs' and
// macOS's SO_PEERCRED).
func peerUID(c *net.UnixConn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	var cred *unix.Xucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptXucred(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	}); err != nil {
		return -1, err
	}
	if cerr != nil {
		return -1, cerr
	}
	// XUCRED_VERSION is 0 on both; another layout is not one to read a uid from.
	if cred.Version != 0 {
		return -1, fmt.Errorf("peer credentials of version %d", cred.Version)
	}
	return int(cred.Uid), nil
}
