package maillog_test

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/mailgate/mailgate/config"
	"github.com/mailgate/mailgate/maillog"
)

// elasticCategory is the file-name pattern of Elastic's Cisco Secure Email
// Gateway integration (its ingest pipeline's grok on log.file.path,
// "^%{DATA}[\\/]%{WORD:category}.@%{GREEDYDATA}.s$", in Go's syntax): the
// log type is the word before ".@" of a rolled file.
var elasticCategory = regexp.MustCompile(`^.*?[\\/](\b\w+\b).@.*.s$`)

// TestRolledNamesForElastic: the default mail log's rolled files, also a
// second one in the same second, are classified as the ESA's text mail log
// ("mail_logs") by a stock Elastic integration.
func TestRolledNamesForElastic(t *testing.T) {
	path := filepath.Join(t.TempDir(), config.DefaultMailLogPath)
	w, err := maillog.Open(path, maillog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := w.Rollover(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rolled, err := filepath.Glob(filepath.Join(filepath.Dir(path), "*.s"))
	if err != nil || len(rolled) != 2 {
		t.Fatalf("rolled files %v (%v), want 2", rolled, err)
	}
	for _, p := range rolled {
		m := elasticCategory.FindStringSubmatch(p)
		if m == nil || m[1] != "mail_logs" {
			t.Errorf("%s: Elastic's category %q, want mail_logs", p, m)
		}
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the current file: %v", err)
	}
}
