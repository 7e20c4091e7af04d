#!/usr/bin/env bash
# Browser tests: headless Chromium (Debian's `chromium`, driven by playwright-core; no browser is
# downloaded) against a real dirsync process and a Google emulator process.
#
#   tests/browser/run.sh [DIRSYNC_BIN [EMULATOR_BIN]]
#
# The binaries default to target/debug/dirsync and target/debug/google-emulator; this script
# builds nothing (cargo build -p dirsync-api -p dirsync-google-emulator first). It installs what
# it needs (apt `chromium` when missing, `npm ci` of playwright-core), starts both processes on
# free ports with a fresh data directory, configures dirsync through its API (service account,
# directory, a sync, Sign in with Google), runs browser-test.mjs, stops the processes, and exits
# non-zero when a test fails. KEEP_TMP=1 keeps the logs and screenshots.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dirsync_bin=$(realpath "${1:-$root/target/debug/dirsync}")
emulator_bin=$(realpath "${2:-$root/target/debug/google-emulator}")
for b in "$dirsync_bin" "$emulator_bin"; do
  [ -x "$b" ] || { echo "missing binary $b (cargo build -p dirsync-api -p dirsync-google-emulator)" >&2; exit 2; }
done

say() { printf '==> %s\n' "$*"; }

# ---- what the test needs ----
if ! command -v chromium >/dev/null 2>&1; then
  say "installing chromium (apt)"
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi
chromium_bin=$(command -v chromium)
if [ ! -d "$here/node_modules/playwright-core" ]; then
  say "installing playwright-core (npm ci)"
  (cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
fi

# ---- processes ----
tmp=$(mktemp -d)
pids=()
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ "$status" != 0 ]; then
    for log in "$tmp"/*.log; do
      [ -f "$log" ] || continue
      echo "---- $(basename "$log") (last 40 lines) ----" >&2
      tail -n 40 "$log" >&2
    done
  fi
  if [ -n "${KEEP_TMP:-}" ]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
  exit "$status"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
gport=$(free_port)
dport=$(free_port)
google="http://127.0.0.1:$gport"
# The browser uses "localhost": a secure context, where Chromium keeps Secure cookies over http.
dirsync="http://localhost:$dport"
client_id="123456789012-browser.apps.googleusercontent.com"
client_secret="GOCSPX-$(python3 -c 'import secrets; print(secrets.token_urlsafe(21))')"
admin_key=$(python3 -c 'import secrets; print(secrets.token_urlsafe(30))')

say "starting the Google emulator on $google"
"$emulator_bin" --listen "127.0.0.1:$gport" --fixture "$here/fixture.json" \
  --key-file "$tmp/service-account.json" \
  --oauth-client-id "$client_id" --oauth-client-secret "$client_secret" \
  --oauth-redirect-uri "$dirsync/oidc/signin" >"$tmp/emulator.log" 2>&1 &
pids+=($!)

say "starting dirsync on $dirsync"
DIRSYNC_DATA_DIR="$tmp/data" DIRSYNC_LISTEN="127.0.0.1:$dport" DIRSYNC_WORKERS=2 \
  DIRSYNC_BOOTSTRAP_ADMIN_KEY="$admin_key" \
  DIRSYNC_GOOGLE_DIRECTORY_URL="$google" \
  DIRSYNC_GOOGLE_TOKEN_URL="$google/token" \
  DIRSYNC_GOOGLE_DISCOVERY_URL="$google/.well-known/openid-configuration" \
  RUST_LOG=info "$dirsync_bin" serve >"$tmp/dirsync.log" 2>&1 &
pids+=($!)

wait_for() {
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  echo "$1 did not come up" >&2
  return 1
}
wait_for "$google/_emulator/health"
wait_for "http://127.0.0.1:$dport/health"

api() { # METHOD PATH [JSON BODY]
  local args=(-fsS -X "$1" -H "authorization: Bearer $admin_key" "http://127.0.0.1:$dport$2")
  if [ $# -ge 3 ]; then args+=(-H 'content-type: application/json' --data-binary "$3"); fi
  curl "${args[@]}"
}

say "configuring dirsync through its API"
api PUT /api/v1/directory/service-account "@$tmp/service-account.json" >/dev/null
api PUT /api/v1/directory '{"provider":"google_workspace","admin_email":"admin@example.com","customer_id":"my_customer","sync_groups":[],"auto_delete_users":false}' >/dev/null
job=$(api POST /api/v1/sync-jobs '{"dry_run":false}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
status=$(api GET "/api/v1/sync-jobs/$job?wait=30" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
[ "$status" = succeeded ] || { echo "sync job ended $status" >&2; exit 1; }
api PUT /api/v1/auth/oidc "{\"client_id\":\"$client_id\",\"client_secret\":\"$client_secret\",\"redirect_uri\":\"$dirsync/oidc/signin\",\"allowed_domains\":[\"example.com\"]}" >/dev/null

# The synchronized users hold `login`. ada also needs `admin` for the admin-only endpoints the
# test calls with her cookie: add it to her privileges through the API.
ada_id=$(api GET "/api/v1/users/lookup?email=ada@example.com" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
privileges=$(api GET "/api/v1/users/$ada_id/privileges" | python3 -c '
import json, sys
p = json.load(sys.stdin)
p["privileges"] = sorted(set(p["privileges"]) | {"admin"})
print(json.dumps(p))')
api PUT "/api/v1/users/$ada_id/privileges" "$privileges" >/dev/null

say "running the browser tests (chromium $("$chromium_bin" --version 2>/dev/null | awk '{print $2}'))"
mkdir -p "$tmp/artifacts"
DIRSYNC_URL="$dirsync" ADMIN_KEY="$admin_key" SIGNIN_EMAIL="ada@example.com" \
  CHROMIUM="$chromium_bin" ARTIFACTS="$tmp/artifacts" \
  node "$here/browser-test.mjs"
