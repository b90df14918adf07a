package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"

	"github.com/mailgate/mailgate/config"
	"github.com/mailgate/mailgate/control"
	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/inbound"
	"github.com/mailgate/mailgate/internal/debuglog"
	"github.com/mailgate/mailgate/mailauth"
	"github.com/mailgate/mailgate/maillog"
	"github.com/mailgate/mailgate/outbound"
	"github.com/mailgate/mailgate/queue"
	"github.com/mailgate/mailgate/resolver"
)

func serve(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var file string
	fs.StringVar(&file, "config", "", "configuration `file` (default: the embedded default)")
	fs.StringVar(&file, "c", "", "short for --config")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to `file` until the gateway stops (for performance work)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "mailgate:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "mailgate:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	var cfg *config.Config
	if file == "" {
		cfg = config.Default()
	} else {
		c, err := config.Load(file)
		if err != nil {
			fmt.Fprintln(stderr, "mailgate:", err)
			return 1
		}
		cfg = c
	}
	for _, w := range cfg.Warnings {
		logger.Warn("mailgate: configuration", "warning", w.Error())
	}
	g, err := start(cfg, logger)
	if err != nil {
		logger.Error("mailgate: start", "err", err)
		return 1
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			g.reopenLogs()
			g.reloadUsers()
			continue
		}
		logger.Info("mailgate: shutting down", "signal", sig.String(), "grace", cfg.ShutdownTimeout)
		break
	}
	signal.Stop(sigs)
	if err := g.stop(); err != nil {
		logger.Error("mailgate: stop", "err", err)
		return 1
	}
	return 0
}

// gateway is a running mailgate: its stores, logs and listeners.
type gateway struct {
	cfg       *config.Config
	log       *slog.Logger
	ids       *queue.Counters
	spool     *queue.Spool
	mailLog   *maillog.Writer
	debugLogs []*maillog.Writer
	delivery  *outbound.Manager
	control   *control.Server
	listeners []*inbound.Listener
	certs     *certWatch
	serving   sync.WaitGroup
	tracking  *trackingService
}

// start opens everything in dependency order and starts the listeners; on
// an error it closes what it opened.
func start(cfg *config.Config, logger *slog.Logger) (_ *gateway, err error) {
	// g, not the result: "return nil, err" must not hide it from the cleanup.
	g := &gateway{cfg: cfg, log: logger}
	defer func() {
		if err != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			g.stopDelivery(ctx)
			cancel()
			g.close()
		}
	}()
	spoolDir := filepath.Join(cfg.DataDir, "spool")
	if err := os.MkdirAll(spoolDir, 0o750); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	if g.ids, err = queue.OpenCounters(filepath.Join(cfg.DataDir, "counters")); err != nil {
		return nil, err
	}
	minFree := cfg.MinFreeSpace
	if minFree == config.MinFreeAuto {
		minFree = queue.AutoMinFree
	}
	if g.spool, err = queue.Open(spoolDir, queue.Options{MinFree: minFree, Logger: logger}); err != nil {
		return nil, err
	}
	// A MID in the spool above the counters' file (a lost file, a restore)
	// must never be handed out again.
	if err := g.ids.Ensure(queue.MID, g.spool.MaxMID()); err != nil {
		return nil, err
	}
	st := g.spool.Stats()
	logger.Info("mailgate: spool recovered", "dir", spoolDir, "messages", st.Messages, "segments", st.Segments, "bytes", st.Bytes)

	hostname := cfg.Hostname
	lc := cfg.Logs.Mail
	if g.mailLog, err = maillog.Open(lc.Path, maillog.Options{Level: lc.Level, MaxSize: lc.MaxSize,
		MaxFiles: lc.MaxFiles, Version: "mailgate " + version, Serial: hostname}); err != nil {
		return nil, err
	}
	if g.tracking, err = startTracking(cfg, g.mailLog, logger); err != nil {
		return nil, err
	}
	dns := resolver.New(cfg.DNS.Servers, cfg.DNS.Timeout)
	srv := &inbound.Server{
		Hostname:   hostname,
		Postmaster: cfg.Postmaster,
		Spool:      g.spool,
		IDs:        g.ids,
		Events:     event.Multi{g.mailLog, g.tracking.sink()},
		DNS:        inbound.NewResolver(dns, cfg.DNS.Timeout),
		Auth:       mailauth.New(dns),
		AuthServID: cfg.AuthServID,
		Lists:      resolver.NewLists(dns, cfg.DNS.ListTimeout, cfg.DNS.ListCacheSize),
		Logger:     logger,
		Pressure:   inbound.NewPressure(cfg.Limits, g.spool.Load, event.Multi{g.mailLog, g.tracking.sink()}),
	}
	debugByPath := map[string]*maillog.Writer{}
	debugLog := func(path string, maxSize int64, maxFiles int) (*maillog.Writer, error) {
		if w := debugByPath[path]; w != nil {
			return w, nil
		}
		w, err := maillog.Open(path, maillog.Options{Level: event.Info, MaxSize: maxSize,
			MaxFiles: maxFiles, Version: "mailgate " + version, Serial: hostname})
		if err != nil {
			return nil, err
		}
		debugByPath[path] = w
		g.debugLogs = append(g.debugLogs, w)
		return w, nil
	}
	for _, d := range cfg.Logs.InjectionDebug {
		w, err := debugLog(d.Path, d.MaxSize, d.MaxFiles)
		if err != nil {
			return nil, err
		}
		// The transcript goes to the tracking store too: "track --events"
		// shows it within the message's timeline.
		srv.Debug = append(srv.Debug, debuglog.New(d.Match, d.Sessions, event.Multi{w, g.tracking.sink()}))
	}
	o := outbound.Options{Hostname: hostname, Spool: g.spool, IDs: g.ids, Events: srv.Events,
		Resolver: dns, Routes: cfg.Routes, Delivery: cfg.Delivery, Logger: logger}
	for _, d := range cfg.Logs.DomainDebug {
		w, err := debugLog(d.Path, d.MaxSize, d.MaxFiles)
		if err != nil {
			return nil, err
		}
		o.Debug = append(o.Debug, debuglog.New(d.Match, d.Sessions, w))
	}
	if g.delivery, err = outbound.New(o); err != nil {
		return nil, err
	}
	if cfg.Delivery.Suspended {
		logger.Warn("mailgate: delivery is suspended (delivery.suspended): messages are received and queued, none is delivered")
	}
	// Before the listeners: what the spool holds from before starts moving
	// at once, and each new message is handed over as it is committed.
	// (Suspended, Start does nothing: the queue commands still work.)
	if err := g.delivery.Start(); err != nil {
		return nil, err
	}
	srv.Queued = g.delivery.Enqueue
	if g.control, err = control.Listen(control.SocketPath(cfg.DataDir), g.delivery, logger); err != nil {
		return nil, err
	}
	for _, lc := range cfg.Listeners {
		l, err := srv.Listen(lc)
		if err != nil {
			return nil, err
		}
		g.listeners = append(g.listeners, l)
		logger.Info("mailgate: listening", "listener", lc.Name, "address", l.Addr().String(), "type", lc.Type)
	}
	g.certs = watchCertificates(servedCertificates(cfg), logger, certCheckInterval)
	for _, l := range g.listeners {
		g.serving.Add(1)
		go func() {
			defer g.serving.Done()
			if err := l.Serve(); err != nil {
				logger.Error("mailgate: listener stopped", "err", err)
			}
		}()
	}
	return g, nil
}

func (g *gateway) reopenLogs() {
	for _, w := range append([]*maillog.Writer{g.mailLog}, g.debugLogs...) {
		if w == nil {
			continue
		}
		if err := w.Reopen(); err != nil {
			g.log.Error("mailgate: reopen log", "err", err)
		}
	}
	g.log.Info("mailgate: logs reopened")
}

// reloadUsers reads the SMTP AUTH users files again; a file that does not
// load leaves its users as they were.
func (g *gateway) reloadUsers() {
	for _, l := range g.listeners {
		db := l.Users()
		if db == nil {
			continue
		}
		if err := db.Reload(); err != nil {
			g.log.Error("mailgate: reload users", "err", err)
			continue
		}
		g.log.Info("mailgate: users reloaded", "file", db.Path(), "users", db.Len())
	}
}

// stop drains the listeners, then the deliveries, within the shutdown
// timeout; kills what remains (a cut delivery is retried after restart);
// then closes the stores and logs.
func (g *gateway) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.ShutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, l := range g.listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.Shutdown(ctx)
		}()
	}
	wg.Wait()
	g.serving.Wait()
	g.stopDelivery(ctx)
	return g.close()
}

// stopDelivery closes the control socket, so that no queue command
// runs while the queue manager stops, then stops the queue manager.
func (g *gateway) stopDelivery(ctx context.Context) {
	if g.control != nil {
		if err := g.control.Close(ctx); err != nil {
			g.log.Warn("mailgate: control socket closed", "err", err)
		}
	}
	if g.delivery != nil {
		if err := g.delivery.Stop(ctx); err != nil {
			g.log.Warn("mailgate: delivery stopped", "err", err)
		}
	}
}

func (g *gateway) close() error {
	if g.certs != nil {
		g.certs.close()
	}
	if g.tracking != nil {
		g.tracking.stop()
	}
	var errs []error
	if g.spool != nil {
		st := g.spool.Stats()
		g.log.Info("mailgate: spool closed", "messages", st.Messages, "records_written", st.Records,
			"batches", st.Batches, "fsyncs", st.Syncs, "segments", st.Segments, "bytes", st.Bytes)
		errs = append(errs, g.spool.Close())
	}
	if g.ids != nil {
		errs = append(errs, g.ids.Close())
	}
	for _, w := range append([]*maillog.Writer{g.mailLog}, g.debugLogs...) {
		if w != nil {
			errs = append(errs, w.Close())
		}
	}
	return errors.Join(errs...)
}
