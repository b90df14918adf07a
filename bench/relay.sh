#!/usr/bin/env bash
# relay.sh - mailgate as a relay, side by side with Postfix, in one run.
#
#   smtp-source --> mailgate 127.0.0.1:2527 --(spool, fsync)--> route ALL --> smtp-sink 127.0.0.1:2526
#   smtp-source --> Postfix  127.0.0.1:2525 --(queue, fsync)--> relayhost  --> smtp-sink 127.0.0.1:2526
#
# The measuring is the project's shared anchor script (postfix-anchor.sh, its `ext` mode), which
# starts Postfix and smtp-sink, alternates the targets and prints accept and end-to-end rates; this
# script only starts mailgate with the matching configuration. Loopback only. Needs root.
# Usage: sudo bench/relay.sh   (N, REPEATS, CONFIGS as in postfix-anchor.sh; ANCHOR=path/to/it)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ANCHOR=${ANCHOR:-$here/../../shared/bench/postfix-anchor.sh}
WORK=${WORK:-/tmp/mailgate-relay}
EXT_ADDR=127.0.0.1:2527
export N=${N:-20000} REPEATS=${REPEATS:-3}
export CONFIGS=${CONFIGS:-"postfix:20:1024 ext:20:1024 postfix:100:1024 ext:100:1024 postfix:20:10240 ext:20:10240"}

die() { echo "relay.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (the anchor configures Postfix)"
[ -f "$ANCHOR" ] || die "no anchor script at $ANCHOR (set ANCHOR)"
ulimit -n "$(ulimit -Hn)"
mkdir -p "$WORK"
(cd "$here/.." && go build -o "$WORK/mailgate" ./cmd/mailgate) || die "go build failed"

rm -rf "$WORK/data"
cat > "$WORK/mailgate.yaml" <<EOF
hostname: relay.localdomain
data_dir: $WORK/data
listeners:
  - name: Relay
    address: $EXT_ADDR
    max_connections: 5000
    hat:
      policy_defaults: {max_concurrency_per_ip: 5000, max_message_size: 50MB}
      sender_groups:
        - {name: RELAY_SG, match: [127.0.0.0/8], policy: RELAYED}
routes:
  - {domain: ALL, hosts: ["127.0.0.1:2526"]}
http: {address: ""}
EOF
"$WORK/mailgate" serve --config "$WORK/mailgate.yaml" 2>"$WORK/mailgate.err" &
MG_PID=$!
trap 'kill $MG_PID 2>/dev/null; wait $MG_PID 2>/dev/null' EXIT
for _ in $(seq 100); do ss -ltn "sport = :${EXT_ADDR##*:}" | grep -q LISTEN && break; sleep 0.05; done
kill -0 "$MG_PID" 2>/dev/null || die "mailgate did not start: $(cat "$WORK/mailgate.err")"

EXT_ADDR=$EXT_ADDR EXT_PID=$MG_PID bash "$ANCHOR"
echo "# mailgate: $(grep -o 'spool closed.*' "$WORK/mailgate.err" | tail -1)"
