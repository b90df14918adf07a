// Command trackimport imports ESA mail log files into the tracking store a
// mailgate configuration names, as `mailgate import` is to do:
//
//	trackimport --config CFG --host esa1 [--cpuprofile FILE] FILE...
//
// It stands in for that command in bench/track.sh until cmd/mailgate has it,
// and it can write a CPU profile of the import for finding where the time
// goes. Files are imported in the order OrderLogFiles gives ("-" is
// standard input; gzipped files are read as such).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"time"

	"github.com/mailgate/mailgate/config"
	"github.com/mailgate/mailgate/tracking"
	"github.com/mailgate/mailgate/tracking/stores"
)

func main() {
	cfgPath := flag.String("config", "", "mailgate configuration file (its tracking store is used)")
	host := flag.String("host", "", "the gateway the logs are of (required)")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the import to this file")
	chunk := flag.Int("chunk", 0, "entries per load-apply-write round (0: the tracker's default)")
	flag.Parse()
	if *cfgPath == "" || *host == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: trackimport --config CFG --host NAME FILE...")
		os.Exit(2)
	}
	if err := run(*cfgPath, *host, *profile, *chunk, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "trackimport:", err)
		os.Exit(1)
	}
}

func run(cfgPath, host, profile string, chunk int, files []string) error {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	store, err := stores.Open(ctx, cfg.Tracking.Driver, cfg.Tracking.DSN)
	if err != nil {
		return err
	}
	defer store.Close()
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	tr := tracking.NewTracker(store, tracking.Options{ChunkSize: chunk})
	var size int64
	im := &tracking.Importer{Tracker: tr, Host: host}
	began := time.Now()
	files = tracking.OrderLogFiles(files)
	endBulk, err := tracking.BeginBulk(ctx, store, tracking.LogSize(files))
	if err != nil {
		return err
	}
	for _, name := range files {
		if err := im.ImportFile(ctx, name); err != nil {
			endBulk(context.WithoutCancel(ctx))
			return err
		}
		if fi, err := os.Stat(name); err == nil && name != "-" {
			size += fi.Size()
		}
	}
	// The time includes making the indexes again.
	if err := endBulk(ctx); err != nil {
		return err
	}
	el := time.Since(began).Seconds()
	s := tr.Stats()
	fmt.Printf("trackimport: %d entries, %d bytes in %.2fs: %.0f lines/s, %.1f MB/s; applied %d, duplicate %d, untracked %d; wrote %d messages, %d connections\n",
		s.Entries, size, el, float64(s.Entries)/el, float64(size)/el/1e6, s.Applied, s.Duplicate, s.Untracked, s.Messages, s.Conns)
	return nil
}
