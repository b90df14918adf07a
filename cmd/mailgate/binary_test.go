package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// buildBinary builds the mailgate binary at path for the tests that run it
// as a process. When this test binary measures coverage (go test -cover),
// the mailgate binary measures it too, for every package of the module it
// links, in the same mode, and every process the tests start writes its
// counters where this test binary writes its own (-test.gocoverdir, else a
// directory of its own): `go tool covdata` then merges what the processes
// ran with what the unit tests ran (make test prints the total). A binary
// built with -cover and started without GOCOVERDIR would warn on stderr,
// which tests read, so GOCOVERDIR is always set for it.
func buildBinary(path string, extra ...string) error {
	args := append([]string{"build", "-o", path}, extra...)
	if mode := testing.CoverMode(); mode != "" {
		if !flag.Parsed() {
			flag.Parse()
		}
		dir := ""
		if f := flag.Lookup("test.gocoverdir"); f != nil {
			dir = f.Value.String()
		}
		if dir == "" {
			var err error
			if dir, err = os.MkdirTemp("", "mailgate-cover"); err != nil {
				return err
			}
		}
		if err := os.Setenv("GOCOVERDIR", dir); err != nil {
			return err
		}
		args = append(args, "-cover", "-covermode="+mode, "-coverpkg=github.com/mailgate/mailgate/...")
	}
	args = append(args, ".")
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("go %v: %w\n%s", args, err, out)
	}
	return nil
}
