//go:build mailgate_teststages

package main

// Stages for the process tests only (built with -tags mailgate_teststages):
// real implementations of workqueue.Stage that the binary's tests can
// name in mail_policies before the scanners exist.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/mailgate/mailgate/config"
	"github.com/mailgate/mailgate/workqueue"
)

func init() { extraStages = testStages }

func testStages(cfg *config.Config) map[string]workqueue.Stage {
	m := map[string]workqueue.Stage{
		"block": blockStage{file: filepath.Join(cfg.DataDir, "block")},
	}
	for _, n := range []string{"tag1", "tag2", "tag3"} {
		m[n] = tagStage(n)
	}
	// Quarantine tests: qhold and qhold2 quarantine a message to the
	// quarantine its X-Quarantine (X-Quarantine2) field names; dropfile
	// drops every message while data_dir/drop exists (a rescan that
	// finds what the first scan did not).
	m["qhold"] = holdStage{field: "X-Quarantine", name: "qhold"}
	m["qhold2"] = holdStage{field: "X-Quarantine2", name: "qhold2"}
	m["dropfile"] = dropStage{file: filepath.Join(cfg.DataDir, "drop")}
	return m
}

type holdStage struct{ field, name string }

func (s holdStage) Run(ctx context.Context, m *workqueue.Message) (workqueue.Verdict, error) {
	p, err := m.MIME()
	if err != nil {
		return workqueue.Verdict{}, err
	}
	if q, ok := p.Header.Get(s.field); ok {
		return workqueue.Verdict{Action: workqueue.Quarantine, Quarantine: q, By: "content filter:" + s.name}, nil
	}
	return workqueue.Verdict{}, nil
}

type dropStage struct{ file string }

func (s dropStage) Run(ctx context.Context, m *workqueue.Message) (workqueue.Verdict, error) {
	slog.Info("teststage: dropfile ran", "mid", m.Env.MID)
	if _, err := os.Stat(s.file); err == nil {
		return workqueue.Verdict{Action: workqueue.Drop, By: "content filter 'dropfile' in the " + m.Table + " table"}, nil
	}
	return workqueue.Verdict{}, nil
}

// tagStage reads the message through and adds "X-Test-Stage: <name>
// <policy>" with how many headers stages before it added.
type tagStage string

func (s tagStage) Run(ctx context.Context, m *workqueue.Message) (workqueue.Verdict, error) {
	r, err := m.Open()
	if err != nil {
		return workqueue.Verdict{}, err
	}
	defer r.Close()
	if _, err := io.Copy(io.Discard, r); err != nil {
		return workqueue.Verdict{}, err
	}
	h := fmt.Sprintf("X-Test-Stage: %s %s after %d", string(s), m.Policy.Name, len(m.Added))
	return workqueue.Verdict{AddHeaders: []string{h}}, nil
}

// blockStage holds each message while the file exists, saying so on
// stderr, so that a test can kill the process with messages mid-stage.
type blockStage struct{ file string }

func (s blockStage) Run(ctx context.Context, m *workqueue.Message) (workqueue.Verdict, error) {
	logged := false
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if _, err := os.Stat(s.file); err != nil {
			return workqueue.Verdict{AddHeaders: []string{"X-Test-Stage: block " + m.Policy.Name}}, nil
		}
		if !logged {
			slog.Info("teststage: blocking", "mid", m.Env.MID)
			logged = true
		}
		select {
		case <-ctx.Done():
			return workqueue.Verdict{}, ctx.Err()
		case <-t.C:
		}
	}
}
