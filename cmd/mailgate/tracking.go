package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailgate/mailgate/config"
	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/inbound"
	"github.com/mailgate/mailgate/maillog"
	"github.com/mailgate/mailgate/metrics"
	"github.com/mailgate/mailgate/quarantine"
	"github.com/mailgate/mailgate/syslog"
	"github.com/mailgate/mailgate/tracking"
	"github.com/mailgate/mailgate/tracking/stores"
	"github.com/mailgate/mailgate/web"
)

// trackingService is the gateway's tracking side: the feed of its own
// events, the syslog receiver of other gateways' logs, and the tracking
// page. With tracking.enabled false only the page runs, on what the store
// holds. It never holds up mail: the store is opened in the background (and
// retried while it is unreachable), and until then the feed only buffers.
type trackingService struct {
	cfg    *config.Config
	log    *slog.Logger
	ops    opsHandlers
	feed   *tracking.Feed
	httpLn net.Listener
	page   atomic.Pointer[http.Handler] // the HTTP listener's handler: without the store until it opens
	opened chan struct{}                // closed when page has the store
	syslog *syslog.Server
	cancel context.CancelFunc
	done   sync.WaitGroup
	// quar is the gateway's quarantines for the page, once the work
	// queue has started (serveQuarantines); nil without mail policies.
	quar atomic.Pointer[quarantine.Store]

	// For the alerts' probe (alerts.go).
	mu      sync.Mutex
	store   tracking.Store // nil until opened, and after it is closed
	openErr error          // why the last try to open it failed
}

// serveQuarantines gives the page the gateway's quarantines.
func (t *trackingService) serveQuarantines(s *quarantine.Store) { t.quar.Store(s) }

func (t *trackingService) quarantines() quarantine.Admin {
	if s := t.quar.Load(); s != nil {
		return s
	}
	return nil
}

// storeWait is how long an API request waits for the store to open.
const storeWait = 5 * time.Second

// opsHandlers are what the HTTP listener serves besides tracking: the
// metrics, and readiness. They answer from the start, whatever the store.
type opsHandlers struct {
	metrics http.Handler
	ready   func() []string
}

// startTracking binds the page's and the syslog receiver's addresses (so
// that a taken port fails the start) and starts the service.
func startTracking(cfg *config.Config, mailLog *maillog.Writer, logger *slog.Logger, ops opsHandlers) (*trackingService, error) {
	t := &trackingService{cfg: cfg, log: logger, ops: ops, opened: make(chan struct{})}
	if cfg.Tracking.Enabled {
		t.feed = tracking.NewFeed(tracking.FeedOptions{Host: cfg.Hostname, LogPath: cfg.Logs.Mail.Path,
			Flush: mailLog.Flush, Removed: mailLog.Removed, Logger: logger})
	}
	if cfg.HTTP.Address != "" {
		ln, err := listenHTTP(cfg)
		if err != nil {
			return nil, err
		}
		t.httpLn = ln
		scheme := "http"
		if cfg.HTTP.TLS != nil {
			scheme = "https"
		}
		logger.Info("mailgate: tracking page", "url", scheme+"://"+ln.Addr().String()+"/")
	}
	ctx, cancel := context.WithCancel(context.Background())
	if cfg.Tracking.Syslog != "" && cfg.Tracking.Enabled {
		t.syslog = &syslog.Server{Addr: cfg.Tracking.Syslog, Senders: cfg.Tracking.SyslogAllow, Logger: logger,
			Handler: func(m syslog.Message) { t.received(ctx, m) }}
		if err := t.syslog.Listen(); err != nil {
			cancel()
			if t.httpLn != nil {
				t.httpLn.Close()
			}
			return nil, fmt.Errorf("tracking.syslog: %w", err)
		}
		logger.Info("mailgate: receiving mail logs by syslog", "address", t.syslog.LocalAddr().String())
	}
	t.cancel = cancel
	t.done.Add(1)
	go func() {
		defer t.done.Done()
		t.run(ctx)
	}()
	return t, nil
}

// watch gives the metrics the feed's and the syslog receiver's counts.
func (t *trackingService) watch(m *metrics.Metrics) {
	src := metrics.Sources{}
	if t.feed != nil {
		src.Tracking = t.feed
	}
	if t.syslog != nil {
		src.SyslogDropped = t.syslog.Dropped
	}
	m.Watch(src)
}

// handler is the HTTP listener's handler with the store s (nil: not open
// yet, the API answers 503 and the rest is served).
func (t *trackingService) handler(s tracking.Store) http.Handler {
	return web.Handler(web.Options{Store: s, Token: t.cfg.HTTP.Token, MetricsToken: t.cfg.HTTP.MetricsToken, Logger: t.log,
		RequireToken: !config.Loopback(t.cfg.HTTP.Address), Hosts: httpHosts(t.cfg.HTTP), Gateway: gatewayOf(t.cfg),
		Metrics: t.ops.metrics, Ready: t.ops.ready, Quarantines: t.quarantines})
}

func (t *trackingService) run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	if t.httpLn != nil {
		// Served from the start: health and metrics do not wait for the
		// store, which may be a database that is down.
		h := t.handler(nil)
		t.page.Store(&h)
		srv := &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasPrefix(r.URL.Path, "/api/") {
					// An API request right after the start waits a little
					// for the store (SQLite opens in milliseconds); one
					// that is down gets the 503 that says so.
					tm := time.NewTimer(storeWait)
					select {
					case <-t.opened:
					case <-tm.C:
					case <-r.Context().Done():
					}
					tm.Stop()
				}
				(*t.page.Load()).ServeHTTP(w, r)
			}),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := srv.Serve(t.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				t.log.Error("mailgate: tracking page stopped", "err", err)
			}
		}()
		go func() {
			defer wg.Done()
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(sctx)
		}()
	}
	if t.feed == nil && t.httpLn == nil {
		return // nothing needs the store
	}
	s := t.open(ctx)
	if s == nil {
		if t.syslog != nil {
			t.syslog.Serve(ctx) // returns at once: ctx is done
		}
		return
	}
	t.mu.Lock()
	t.store = s
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		t.store = nil
		t.mu.Unlock()
		s.Close()
	}()
	if t.httpLn != nil {
		h := t.handler(s)
		t.page.Store(&h)
		close(t.opened)
	}
	if t.syslog != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := t.syslog.Serve(ctx); err != nil {
				t.log.Error("mailgate: syslog receiver stopped", "err", err)
			}
		}()
	}
	if t.feed != nil {
		// The gateways that write the store prune it (each, when they
		// share one: a round that finds nothing to delete is cheap).
		ret := &tracking.Retention{MaxAge: t.cfg.Tracking.Retention.MaxAge, MaxSize: t.cfg.Tracking.Retention.MaxSize, Logger: t.log}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ret.Run(ctx, s)
		}()
		if err := t.feed.Run(ctx, s); err != nil {
			t.log.Warn("mailgate: tracking stopped", "err", err)
		}
	}
	// The page's requests and the receiver end before the store closes.
	<-ctx.Done()
	wg.Wait()
}

// listenHTTP binds the page's address, with TLS when http.tls says so.
func listenHTTP(cfg *config.Config) (net.Listener, error) {
	var tc *tls.Config
	if cfg.HTTP.TLS != nil {
		var err error
		// LoadTLS makes a listener's self-signed pair on first start, as
		// the listener itself would.
		if tc, err = inbound.LoadTLS(*cfg.HTTP.TLS, cfg.Hostname); err != nil {
			return nil, fmt.Errorf("http.tls: %w", err)
		}
	}
	ln, err := net.Listen("tcp", cfg.HTTP.Address)
	if err != nil {
		return nil, fmt.Errorf("http: %w", err)
	}
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	return ln, nil
}

// httpHosts are the names the page answers to: the configured ones and
// the address it is bound to (loopback's always).
func httpHosts(h config.HTTP) []string {
	hosts := h.Hosts
	if host, _, err := net.SplitHostPort(h.Address); err == nil {
		if a, err := netip.ParseAddr(host); err == nil && !a.IsUnspecified() {
			hosts = append(slices.Clip(hosts), a.Unmap().String())
		}
	}
	return hosts
}

// sink is where the gateway's events go for tracking.
func (t *trackingService) sink() event.Sink {
	if t.feed == nil {
		return event.Discard
	}
	return t.feed
}

// received takes one line of another gateway's mail log, tracked under the
// host name configured for its sender, else the one its syslog header
// gives, else its address.
func (t *trackingService) received(ctx context.Context, m syslog.Message) {
	e, err := maillog.ParseLine(m.Line, time.Local)
	if err != nil {
		return // an empty message
	}
	host := m.Host
	if host == "" {
		host = m.Peer.Addr().String()
	}
	t.feed.Take(ctx, host, e)
}

// open opens the store, retrying while it fails, until ctx is done.
func (t *trackingService) open(ctx context.Context) tracking.Store {
	wait := time.Second
	for {
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		s, err := stores.Open(octx, t.cfg.Tracking.Driver, t.cfg.Tracking.DSN)
		cancel()
		if err == nil {
			return s
		}
		t.mu.Lock()
		t.openErr = err
		t.mu.Unlock()
		t.log.Warn("mailgate: tracking store unavailable; mail flows, tracking waits", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Minute)
	}
}

// stop writes what the feed holds and stops the service; it is called
// after the listeners and deliveries stopped, so that their last events
// are tracked.
func (t *trackingService) stop() {
	t.cancel()
	t.done.Wait()
}
