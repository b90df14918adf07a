package stats

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/mailgate/mailgate/internal/atomicfile"
)

// lifetimeFile is the lifetime counters as saved in the data directory:
//
//	{"version":1,"saved":"2026-12-07T11:50:00Z","counters":{"inj_msgs":12,...}}
//
// Counters are keyed by name, so that a later version may add some.
type lifetimeFile struct {
	Version  int               `json:"version"`
	Saved    time.Time         `json:"saved"`
	Counters map[string]uint64 `json:"counters"`
}

// load reads the lifetime counters; a file that does not exist is all
// zeros.
func load(path string) ([numCounters]uint64, error) {
	var life [numCounters]uint64
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return life, nil
	}
	if err != nil {
		return life, fmt.Errorf("stats: %w", err)
	}
	var f lifetimeFile
	if err := json.Unmarshal(b, &f); err != nil {
		return life, fmt.Errorf("stats: %s: %w", path, err)
	}
	if f.Version != 1 {
		return life, fmt.Errorf("stats: %s: version %d, not 1", path, f.Version)
	}
	for k := range numCounters {
		life[k] = f.Counters[k.String()]
	}
	return life, nil
}

// store replaces the file durably (atomicfile): a crash leaves the old
// file or the new one, never a mix.
func store(path string, life [numCounters]uint64, now time.Time) error {
	f := lifetimeFile{Version: 1, Saved: now.UTC(), Counters: map[string]uint64{}}
	for k := range numCounters {
		f.Counters[k.String()] = life[k]
	}
	b, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("stats: %w", err)
	}
	if err := atomicfile.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("stats: save: %w", err)
	}
	return nil
}
