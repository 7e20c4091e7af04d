#!/usr/bin/env bash
# Starts a throw-away PostgreSQL 15 server for the test suite and prints its URL.
#   scripts/pg-temp.sh start DIR   -> prints postgres://postgres@127.0.0.1:PORT/postgres
#   scripts/pg-temp.sh stop DIR
#   scripts/pg-temp.sh pause DIR   -> a clean (fast) shutdown that keeps the data
#   scripts/pg-temp.sh resume DIR  -> starts a paused server again on the same port and data
# The server binaries refuse to run as root, so as root they run as the `postgres` user.
set -euo pipefail
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
cmd=$1 dir=$2

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_start() {
  # fsync off: a test server that is thrown away has nothing to keep.
  as_pg "$PGBIN/pg_ctl" -D "$1/data" -l "$1/server.log" -w \
    -o "-p $2 -k $1 -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=off -c synchronous_commit=off" \
    start >/dev/null
}

case "$cmd" in
start)
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  as_pg "$PGBIN/initdb" -D "$dir/data" -A trust -U postgres --no-sync >"$dir/initdb.log" 2>&1
  echo "$port" >"$dir/port"
  pg_start "$dir" "$port"
  echo "postgres://postgres@127.0.0.1:$port/postgres"
  ;;
pause)
  # synchronous_commit=off keeps the last commits in memory for a moment: only a clean
  # shutdown is sure to keep them.
  as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
  ;;
resume)
  pg_start "$dir" "$(cat "$dir/port")"
  ;;
stop)
  as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  ;;
*)
  echo "usage: $0 start|stop|pause|resume DIR" >&2
  exit 2
  ;;
esac
