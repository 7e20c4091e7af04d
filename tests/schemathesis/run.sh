#!/usr/bin/env bash
# Fuzzes the API from its own OpenAPI document with Schemathesis (all phases: examples,
# coverage, fuzzing, stateful), as an admin, against a fresh server.
#   tests/schemathesis/run.sh [path/to/dirsync] [seconds]
#
# Checks: all of them — no server errors, responses that fit the documented schema (status,
# content type, headers, body), schema-violating requests refused, schema-valid requests
# accepted, no route answering without its token. The operations that refuse some schema-valid
# input for a reason no schema can express are named in schemathesis.toml, with the reason.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/../../target/debug/dirsync}
budget=${2:-150}
work=$(mktemp -d)
venv=${SCHEMATHESIS_VENV:-$work/venv}
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'schemathesis>=4,<5'
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
key=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
DIRSYNC_DATA_DIR=$work/data DIRSYNC_LISTEN=127.0.0.1:$port DIRSYNC_BOOTSTRAP_ADMIN_KEY=$key \
  DIRSYNC_RATE_LIMIT_API_PER_MINUTE=0 DIRSYNC_RATE_LIMIT_SIGNIN_PER_MINUTE=0 \
  DIRSYNC_RATE_LIMIT_AUTH_FAILURES_PER_MINUTE=0 \
  "$bin" serve >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
  sleep 0.1
done
set +e
"$venv/bin/schemathesis" --config-file "$here/schemathesis.toml" \
  run "http://127.0.0.1:$port/api-docs/openapi.json" \
  -H "Authorization: Bearer $key" \
  --checks all \
  --phases examples,coverage,fuzzing,stateful \
  -n 25 --max-time "$budget" --seed 20261127 --no-color --generation-database=none
status=$?
set -e
if grep -q "internal error" "$work/server.log"; then
  echo "the server logged internal errors:" >&2
  grep "internal error" "$work/server.log" | head -20 >&2
  status=1
fi
exit $status
