// Package atomicfile replaces small files durably: the state files the
// gateway rewrites whole (the ID counters, the lifetime status counters,
// the SMTP AUTH users file). After a crash at any moment the file is the
// old one or the new one, whole, never a mix, a truncated file or none.
package atomicfile

import (
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFile replaces the file at path with data and mode perm: it writes a
// temporary file in the same directory (a rename is atomic only within a
// file system), fsyncs it, renames it over path, and fsyncs the directory,
// without which the rename itself may be lost by a crash and the old file
// come back. On an error before the rename, path is as it was and the
// temporary file is removed. perm is set as given, whatever the umask.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	// A dot name: a listing of the directory, or a glob of its files (a
	// configuration directory), does not show a half-written copy.
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	err = tmp.Chmod(perm)
	if err == nil {
		_, err = tmp.Write(data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return syncDir(dir)
}

// syncDir fsyncs a directory, making the names in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
