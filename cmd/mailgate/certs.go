package main

import (
	"crypto/x509"
	"log/slog"
	"slices"
	"time"

	"github.com/mailgate/mailgate/config"
)

// certCheckInterval is how often a running gateway looks at the dates of
// the certificates it serves: a gateway runs for months, and a warning
// logged only at its start is not seen in time.
const certCheckInterval = 24 * time.Hour

// certWatch warns in the gateway's log, every interval, of each
// certificate the gateway serves that has expired or expires within
// config.ExpiryWarning. At start the configuration's warnings say it.
type certWatch struct {
	log   *slog.Logger
	certs map[string]*x509.Certificate // by certificate file
	stop  chan struct{}
	done  chan struct{}
}

// watchCertificates starts watching the certificates of files, as served:
// read once, now, as the listeners just did.
func watchCertificates(files []config.TLSFiles, log *slog.Logger, every time.Duration) *certWatch {
	w := &certWatch{log: log, certs: map[string]*x509.Certificate{}, stop: make(chan struct{}), done: make(chan struct{})}
	for _, f := range files {
		if w.certs[f.Cert] != nil {
			continue // shared by several listeners
		}
		pair, err := config.LoadCertificate(f)
		if err != nil {
			log.Warn("mailgate: TLS certificate not watched", "err", err)
			continue
		}
		w.certs[f.Cert] = pair.Leaf
	}
	go w.run(every)
	return w
}

func (w *certWatch) run(every time.Duration) {
	defer close(w.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case now := <-t.C:
			w.check(now)
		}
	}
}

func (w *certWatch) check(now time.Time) {
	files := make([]string, 0, len(w.certs))
	for f := range w.certs {
		files = append(files, f)
	}
	slices.Sort(files)
	for _, f := range files {
		if msg := config.Expiry(w.certs[f], now); msg != "" {
			w.log.Warn("mailgate: TLS certificate", "file", f, "problem", msg)
		}
	}
}

func (w *certWatch) close() {
	close(w.stop)
	<-w.done
}

// servedCertificates are the certificate files the gateway serves.
func servedCertificates(cfg *config.Config) []config.TLSFiles {
	var fs []config.TLSFiles
	for _, l := range cfg.Listeners {
		fs = append(fs, l.TLS)
	}
	if cfg.HTTP.Address != "" && cfg.HTTP.TLS != nil {
		fs = append(fs, *cfg.HTTP.TLS)
	}
	return fs
}
