package clamd

import (
	"archive/zip"
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/internal/enginetest"
	"github.com/mailgate/mailgate/scan"
)

// The limits of the guarded clamd, small so that the bombs are small and
// quick (clamd's own defaults: MaxFileSize 100M, MaxScanSize 400M,
// MaxRecursion 17, MaxFiles 10000), and AlertExceedsMax: a file clamd
// stops reading at a limit is reported Heuristics.Limits.Exceeded, not OK.
const (
	bombMaxFile  = 10 << 20
	bombMaxScan  = 40 << 20
	bombMaxDepth = 8
	bombMaxFiles = 100
	bombStream   = 16 << 20
)

var guarded = enginetest.Shared{Start: func() (*enginetest.Engine, error) {
	return enginetest.ClamdWith(bombStream, fmt.Sprintf("AlertExceedsMax yes\nMaxFileSize %d\nMaxScanSize %d\nMaxRecursion %d\nMaxFiles %d\n",
		bombMaxFile, bombMaxScan, bombMaxDepth, bombMaxFiles))
}}

// zipFiles is a zip of the given files, deflated.
func zipFiles(t *testing.T, files map[string][]byte) []byte {
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for name, data := range files {
		f, err := w.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// bombs are archives past each of clamd's limits, each small on disk.
func bombs(t *testing.T) []struct {
	name, limit string
	zip         []byte
	class       scan.VirusClass
} {
	// 42.zip-like: 16 zips of 16 files of 8 MB of zeros, each file within
	// MaxFileSize; 2 GB in all, past MaxScanSize after five files.
	zeros := make([]byte, 8<<20)
	inner := map[string][]byte{}
	for i := range 16 {
		inner[fmt.Sprintf("%02d.bin", i)] = zeros
	}
	z1 := zipFiles(t, inner)
	outer := map[string][]byte{}
	for i := range 16 {
		outer[fmt.Sprintf("%02d.zip", i)] = z1
	}
	bomb := zipFiles(t, outer)

	// A zip in a zip, 20 deep: past MaxRecursion.
	deep := zipFiles(t, map[string][]byte{"core.txt": []byte("the core\n")})
	for i := range 20 {
		deep = zipFiles(t, map[string][]byte{fmt.Sprintf("level%d.zip", i): deep})
	}

	// One file of 20 MB: past MaxFileSize. clamd reads its first
	// MaxFileSize bytes ("cli_unzip: trimming output size to
	// maxfilesize") and alerts nothing.
	big := zipFiles(t, map[string][]byte{"big.bin": make([]byte, 2*bombMaxFile)})

	// 200 small files: past MaxFiles.
	many := map[string][]byte{}
	for i := range 2 * bombMaxFiles {
		many[fmt.Sprintf("f%03d.txt", i)] = []byte(strings.Repeat("hello ", i+1))
	}
	return []struct {
		name, limit string
		zip         []byte
		class       scan.VirusClass
	}{
		{"42.zip-like bomb", "MaxScanSize", bomb, scan.Unscannable},
		{"nested 20 deep", "MaxRecursion", deep, scan.Unscannable},
		{"a file of 20 MB", "", big, scan.Clean},
		{"200 files", "MaxFiles", zipFiles(t, many), scan.Unscannable},
	}
}

// TestRealArchiveBombs: archive bombs in a message, to a real clamd.
// With AlertExceedsMax clamd names the limit it stopped at, and the
// client reports the message unscannable; without it (clamd's default)
// clamd answers OK for the same messages: it read only part of them, and
// says clean. That is why the README asks for AlertExceedsMax.
func TestRealArchiveBombs(t *testing.T) {
	g := guarded.Get(t)
	plain := engine.Get(t)
	for _, b := range bombs(t) {
		body := mime(attachment("files.zip", "application/zip", b.zip))
		t.Logf("%s: %d bytes zipped, a message of %d bytes", b.name, len(b.zip), len(body))
		t.Run(b.name, func(t *testing.T) {
			if len(body) > bombStream {
				t.Fatalf("the message is %d bytes, over the StreamMaxLength", len(body))
			}
			c := New(Options{Address: g.Unix, MaxSize: bombStream})
			v, err := c.ScanVirus(enginetest.Context(t), msg(body))
			if err != nil {
				t.Fatal(err)
			}
			want := ""
			if b.limit != "" {
				want = "Heuristics.Limits.Exceeded." + b.limit
			}
			if v.Class != b.class || v.Name != want {
				t.Errorf("AlertExceedsMax: %v %q, want %v %q", v.Class, v.Name, b.class, want)
			}
			if len(body) > streamMax {
				return // too big for the plain clamd
			}
			v, err = New(Options{Address: plain.Unix, MaxSize: streamMax}).ScanVirus(enginetest.Context(t), msg(body))
			if err != nil {
				t.Fatal(err)
			}
			if v.Class != scan.Clean {
				t.Errorf("without AlertExceedsMax: %v %q, want clean (clamd's OK)", v.Class, v.Name)
			}
		})
	}
	// Within the limits, a zip is scanned and clean, and EICAR in it found;
	// a message itself over MaxFileSize (StreamMaxLength above it) is
	// unscannable.
	c := New(Options{Address: g.Unix, MaxSize: bombStream})
	for _, tt := range []struct {
		name  string
		body  []byte
		class scan.VirusClass
		virus string
	}{
		{"a small zip", mime(attachment("files.zip", "application/zip", zipFiles(t, map[string][]byte{"notes.txt": []byte("nothing\n")}))), scan.Clean, ""},
		{"EICAR two zips deep", mime(attachment("files.zip", "application/zip",
			zipFiles(t, map[string][]byte{"in.zip": zipFiles(t, map[string][]byte{"eicar.com": []byte(enginetest.EICAR)})}))), scan.Viral, "Eicar-Test-Signature.UNOFFICIAL"},
		{"a message over MaxFileSize", bytes.Repeat([]byte("x"), bombMaxFile+1), scan.Unscannable, "Heuristics.Limits.Exceeded.MaxFileSize"},
	} {
		v, err := c.ScanVirus(enginetest.Context(t), msg(tt.body))
		if err != nil || v.Class != tt.class || v.Name != tt.virus {
			t.Errorf("%s: %v %q %v, want %v %q", tt.name, v.Class, v.Name, err, tt.class, tt.virus)
		}
	}
}
