#!/usr/bin/env bash
# Installs what mailgate's tests talk to, on a fresh Debian machine: Postfix's
# smtp-source/smtp-sink (package postfix, installed but never configured or
# started by this script), swaks with its TLS module, Python 3 (smtplib),
# Chromium with Node.js and playwright-core (the tracking page's browser test,
# web/e2e), and a running PostgreSQL at 127.0.0.1:5432 (the shared tracking
# store's tests; started when it is installed and down). Idempotent: does
# nothing when everything is there. Needs root (or sudo) only when something
# is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"

missing=()
[ -x /usr/sbin/smtp-source ] && [ -x /usr/sbin/smtp-sink ] || missing+=(postfix)
command -v swaks >/dev/null || missing+=(swaks)
# swaks only recommends its TLS and IPv6 modules; the tests use -tls.
perl -MNet::SSLeay -e1 2>/dev/null || missing+=(libnet-ssleay-perl)
perl -MIO::Socket::INET6 -e1 2>/dev/null || missing+=(libio-socket-inet6-perl)
command -v python3 >/dev/null || missing+=(python3)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
command -v pg_ctlcluster >/dev/null || missing+=(postgresql)
# The engines the security tests start with their own configuration on
# loopback: rspamd, ClamAV's clamd, SpamAssassin's spamd; python3-dkim's
# dkimsign/dkimverify for DKIM interoperability; rsyslog as a syslog
# receiver for log push; promtool (package prometheus) to check /metrics.
[ -x /usr/bin/rspamd ] || missing+=(rspamd)
[ -x /usr/sbin/clamd ] || missing+=(clamav-daemon)
[ -x /usr/sbin/spamd ] || missing+=(spamd)
command -v dkimverify >/dev/null || missing+=(python3-dkim)
[ -x /usr/sbin/rsyslogd ] || missing+=(rsyslog)
# rsyslog's GnuTLS driver: the TLS syslog push test's receiver (gtls).
ls /usr/lib/*/rsyslog/lmnsd_gtls.so >/dev/null 2>&1 || missing+=(rsyslog-gnutls)
command -v promtool >/dev/null || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ]; then
	echo "test-deps: installing ${missing[*]}" >&2
	echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -q >/dev/null
	$sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# playwright-core, at the version package-lock.json pins.
if [ ! -d web/e2e/node_modules/playwright-core ] || [ web/e2e/package-lock.json -nt web/e2e/node_modules/.package-lock.json ]; then
	(cd web/e2e && npm ci --no-audit --no-fund --loglevel=error)
fi

# PostgreSQL: the tests use 127.0.0.1:5432, trust authentication, database test.
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
	echo "test-deps: starting PostgreSQL" >&2
	for v in $(ls /etc/postgresql 2>/dev/null); do
		$sudo pg_ctlcluster --skip-systemctl-redirect "$v" main start || true
	done
	for _ in $(seq 1 30); do
		pg_isready -q -h 127.0.0.1 -p 5432 && break
		sleep 1
	done
fi
