#!/usr/bin/env bash
# Builds `dirsync` as it was just before the newest migration was added — the server of the
# previous migration set, which a rolling upgrade leaves running beside the new one — and prints
# its path. The upgrade test (`tests/e2e/instances.rs`) runs it via DIRSYNC_PREVIOUS_SERVER.
#
# It builds in this checkout's target directory, so that the dependencies already built are
# reused: only the workspace's own crates are compiled again. That build also writes
# `target/debug/dirsync`; the next `cargo build` of this checkout puts the current one back.
set -euo pipefail
cd "$(dirname "$0")/.."
newest=$(ls migration/src | grep -E '^m[0-9]{8}_[0-9]{6}_.*\.rs$' | sort | tail -1)
added=$(git log --diff-filter=A -1 --format=%H -- "migration/src/$newest")
if [ -z "$added" ]; then
  echo "previous-server.sh: the newest migration $newest is not committed yet" >&2
  exit 1
fi
previous=$(git rev-parse "$added^")
out=target/previous/$previous/dirsync
if [ ! -x "$out" ]; then
  tree=$(mktemp -d)
  trap 'rm -rf "$tree"' EXIT
  git archive "$previous" | tar -x -C "$tree"
  CARGO_TARGET_DIR=$PWD/target cargo build --locked -q --manifest-path "$tree/Cargo.toml" \
    -p dirsync-api --bin dirsync >&2
  mkdir -p "$(dirname "$out")"
  cp target/debug/dirsync "$out"
fi
echo "$PWD/$out"
