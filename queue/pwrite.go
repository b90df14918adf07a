package queue

import "os"

// writeEach writes the buffers of iov one after another at off, one
// pwrite(2) each (WriteAt repeats a short write): pwritevAll where the
// system has no pwritev. A batch is a few buffers per record, so it costs
// system calls, not copies. Built on every system, so that its test runs
// on Linux too.
func writeEach(f *os.File, iov [][]byte, off int64) error {
	for _, b := range iov {
		if _, err := f.WriteAt(b, off); err != nil {
			return err
		}
		off += int64(len(b))
	}
	return nil
}
