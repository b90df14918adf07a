package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestWriteFile: the file is created or replaced with the data and the
// mode asked for (the umask aside), and a write that fails leaves the old
// file and no temporary one.
func TestWriteFile(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	for _, tt := range []struct {
		name   string
		before string // "" for none
		data   string
		perm   fs.FileMode
	}{
		{"new, owner only", "", "ICID 1\n", 0o600},
		{"new, readable by all despite the umask", "", "cert\n", 0o644},
		{"replaced, longer", "a\n", "a longer line\n", 0o600},
		{"replaced, shorter and another mode", "a longer line\n", "b\n", 0o640},
		{"replaced by nothing", "x\n", "", 0o600},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "counters")
			if tt.before != "" {
				if err := os.WriteFile(path, []byte(tt.before), 0o666); err != nil {
					t.Fatal(err)
				}
			}
			if err := WriteFile(path, []byte(tt.data), tt.perm); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil || string(b) != tt.data {
				t.Errorf("content %q %v, want %q", b, err, tt.data)
			}
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != tt.perm {
				t.Errorf("mode %v %v, want %v", fi.Mode().Perm(), err, tt.perm)
			}
			onlyFile(t, dir, "counters")
		})
	}
}

func TestWriteFileFails(t *testing.T) {
	dir := t.TempDir()
	// A directory where the file should be: the rename fails.
	path := filepath.Join(dir, "users")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("alice:x\n"), 0o600); err == nil {
		t.Error("no error writing over a directory")
	}
	if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
		t.Errorf("the directory: %v %v", fi, err)
	}
	onlyFile(t, dir, "users")

	if err := WriteFile(filepath.Join(dir, "none", "users"), nil, 0o600); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("in a directory that does not exist: %v", err)
	}
}

// onlyFile fails the test unless name is all there is in dir: no
// temporary file is left behind.
func onlyFile(t *testing.T, dir, name string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != name {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("%s holds %q, want only %s", dir, names, name)
	}
}
