#!/usr/bin/env bash
# Checks the example alerting rules and what /metrics serves, with Prometheus's own promtool:
#   deploy/prometheus/check.sh [path/to/dirsync]
# - `promtool check rules`: alerts.yml parses and its expressions are valid PromQL;
# - `promtool test rules`: alerts_test.yml feeds series through the rules and expects each alert
#   to fire, or not, when it should;
# - `promtool check metrics`: a real scrape of a fresh server follows the exposition format and
#   Prometheus's naming conventions.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# Made absolute before the `cd` below: callers pass it relative to where they run.
bin=$(realpath "${1:-$here/../../target/debug/dirsync}")
cd "$here"
promtool check rules alerts.yml
promtool test rules alerts_test.yml

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DIRSYNC_DATA_DIR=$work/data DIRSYNC_LISTEN=127.0.0.1:$port "$bin" serve >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
up=
for _ in $(seq 300); do
  if curl -sf "http://127.0.0.1:$port/health" >/dev/null; then up=1; break; fi
  sleep 0.1
done
if [ -z "$up" ]; then
  echo "the server did not answer /health in 30 s; its log:" >&2
  cat "$work/server.log" >&2
  exit 1
fi
# A refused sign-in and a request, so that the counters have series to check too.
curl -s -o /dev/null -H 'content-type: application/json' \
  -d '{"user_name":"nobody","password":"wrong"}' "http://127.0.0.1:$port/api/v1/auth/login"
curl -sf "http://127.0.0.1:$port/metrics" >"$work/metrics.txt"
echo "checking a scrape of $(wc -l <"$work/metrics.txt") lines"
promtool check metrics <"$work/metrics.txt"
