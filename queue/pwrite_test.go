package queue

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Both ways of writing a batch put every buffer at its place: pwritevAll
// (pwritev where the system has it) and writeEach, its fallback elsewhere,
// tested here on every system.
func TestWriteBatch(t *testing.T) {
	many := make([][]byte, 2*iovMax+3) // more than one pwritev takes
	for i := range many {
		many[i] = []byte(fmt.Sprintf("<%d>", i))
	}
	cases := []struct {
		name string
		iov  [][]byte
		off  int64
	}{
		{"nothing", nil, 0},
		{"one", [][]byte{[]byte("hello")}, 0},
		{"at an offset", [][]byte{[]byte("ab"), []byte("cd")}, 7},
		{"empty buffers between", [][]byte{[]byte("a"), nil, {}, []byte("b")}, 3},
		{"beyond IOV_MAX", many, 5},
		{"past the end", [][]byte{zeros[:4096], []byte("tail")}, 1 << 16},
	}
	writers := []struct {
		name  string
		write func(*os.File, [][]byte, int64) error
	}{
		{"pwritevAll", pwritevAll},
		{"writeEach", writeEach},
	}
	const before = "0123456789abcdefghij" // what the file held; the write must keep what it does not cover
	for _, w := range writers {
		for _, c := range cases {
			t.Run(w.name+"/"+c.name, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "seg")
				if err := os.WriteFile(path, []byte(before), 0o600); err != nil {
					t.Fatal(err)
				}
				f, err := os.OpenFile(path, os.O_RDWR, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				data := bytes.Join(c.iov, nil)
				want := []byte(before)
				if end := int(c.off) + len(data); end > len(want) {
					want = append(want, make([]byte, end-len(want))...)
				}
				copy(want[c.off:], data)

				// A copy of the list, which pwritevAll may change.
				if err := w.write(f, slices.Clone(c.iov), c.off); err != nil {
					t.Fatal(err)
				}
				got, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("file holds %d bytes %.60q..., want %d bytes %.60q...", len(got), got, len(want), want)
				}
			})
		}
	}
}
