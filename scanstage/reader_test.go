package scanstage

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// stream is a message as the spool streams it: its bytes, then err in
// place of io.EOF when the stored checksum does not match (nil: it does).
type stream struct {
	r   *bytes.Reader
	err error
}

func (s *stream) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err == io.EOF && s.err != nil {
		err = s.err
	}
	return n, err
}

func (s *stream) Close() error { return nil }

var errCorrupt = errors.New("checksum mismatch")

func TestSpoolReaderAt(t *testing.T) {
	msg := []byte("Subject: x\r\n\r\nhello, world\r\n")
	for _, c := range []struct {
		name    string
		corrupt error
		reads   [][2]int64 // offset, length
		opens   int
		wantErr error
	}{
		{"front to back", nil, [][2]int64{{0, 10}, {10, 10}, {20, int64(len(msg)) - 20}}, 1, nil},
		{"from the start again", nil, [][2]int64{{0, 10}, {0, 10}, {10, 5}}, 2, nil},
		{"a skip forward", nil, [][2]int64{{5, 10}}, 1, nil},
		{"damaged: the last read fails", errCorrupt, [][2]int64{{0, 10}, {10, int64(len(msg)) - 10}}, 1, errCorrupt},
	} {
		t.Run(c.name, func(t *testing.T) {
			opens := 0
			s := &spoolReaderAt{size: int64(len(msg)), open: func() (io.ReadCloser, error) {
				opens++
				return &stream{r: bytes.NewReader(msg), err: c.corrupt}, nil
			}}
			defer s.close()
			var err error
			for _, r := range c.reads {
				p := make([]byte, r[1])
				var n int
				n, err = s.ReadAt(p, r[0])
				if n != int(r[1]) || !bytes.Equal(p[:n], msg[r[0]:r[0]+int64(n)]) {
					t.Fatalf("ReadAt(%d, %d) = %d %q, %v", r[1], r[0], n, p[:n], err)
				}
			}
			if !errors.Is(err, c.wantErr) || (c.wantErr == nil && err != nil) {
				t.Errorf("last read's error %v, want %v", err, c.wantErr)
			}
			if opens != c.opens {
				t.Errorf("%d opens, want %d", opens, c.opens)
			}
		})
	}
}
