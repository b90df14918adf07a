#!/usr/bin/env bash
# Installs what mailgate's tests talk to, on a fresh Debian machine: Postfix's
# smtp-source/smtp-sink (package postfix, installed but never configured or
# started by this script), swaks with its TLS module, Python 3 (smtplib). Idempotent: does nothing
# when everything is there. Needs root (or sudo) only when something is missing.
set -euo pipefail
missing=()
[ -x /usr/sbin/smtp-source ] && [ -x /usr/sbin/smtp-sink ] || missing+=(postfix)
command -v swaks >/dev/null || missing+=(swaks)
# swaks only recommends its TLS and IPv6 modules; the tests use -tls.
perl -MNet::SSLeay -e1 2>/dev/null || missing+=(libnet-ssleay-perl)
perl -MIO::Socket::INET6 -e1 2>/dev/null || missing+=(libio-socket-inet6-perl)
command -v python3 >/dev/null || missing+=(python3)
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
echo "test-deps: installing ${missing[*]}" >&2
echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q >/dev/null
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
