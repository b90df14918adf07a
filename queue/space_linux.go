package queue

import "golang.org/x/sys/unix"

// statfs returns the bytes of the file system holding dir that an
// unprivileged user may still use, and its size.
func statfs(dir string) (free, total int64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, err
	}
	return int64(st.Bavail) * st.Bsize, int64(st.Blocks) * st.Bsize, nil
}
