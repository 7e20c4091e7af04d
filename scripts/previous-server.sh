#!/usr/bin/env bash
# Builds `dirsync` as it was just before the newest migration was added — the server of the
# previous migration set, which a rolling upgrade leaves running beside the new one — and prints
# its path. The upgrade test (`tests/e2e/instances.rs`) runs it via DIRSYNC_PREVIOUS_SERVER.
#
# It builds in this checkout's target directory, so that the dependencies already built are
# reused and only the workspace's own crates are compiled again. Cargo names a workspace crate's
# artifacts by its package name and its path within the workspace, not by the checkout it lives
# in, and judges them fresh by file times: the old sources (with older times) would be taken for
# the current crates' builds, or overwrite them. So the old tree's packages and binary are renamed
# (`-previous`) before it is built: its artifacts are its own.
set -euo pipefail
cd "$(dirname "$0")/.."
newest=$(ls migration/src | grep -E '^m[0-9]{8}_[0-9]{6}_.*\.rs$' | sort | tail -1)
# Along main's own line (--first-parent): a migration merged from a branch counts from the merge,
# whose first parent is main as it was before.
added=$(git log --first-parent -m --diff-filter=A -1 --format=%H -- "migration/src/$newest")
if [ -z "$added" ]; then
  echo "previous-server.sh: the newest migration $newest is not committed yet" >&2
  exit 1
fi
previous=$(git rev-parse "$added^1")
out=target/previous/$previous/dirsync
if [ ! -x "$out" ]; then
  tree=$(mktemp -d)
  trap 'rm -rf "$tree"' EXIT
  git archive "$previous" | tar -x -C "$tree"
  python3 - "$tree" <<'PY'
import pathlib, re, sys
root = pathlib.Path(sys.argv[1])
members = ["api", "core", "entity", "migration", "tests", "tests/google-emulator"]
for m in members:
    p = root / m / "Cargo.toml"
    text = p.read_text()
    # The package's own name (the first `name =`, under [package]), its library keeping the
    # crate name its code uses ...
    name = re.search(r'^name = "(dirsync-[a-z-]+)"', text, flags=re.M).group(1)
    text = re.sub(r'^name = "(dirsync-[a-z-]+)"', r'name = "\1-previous"', text, count=1, flags=re.M)
    lib = 'name = "%s"\n' % name.replace("-", "_")
    text = text.replace("[lib]\n", "[lib]\n" + lib) if "[lib]\n" in text else text + "\n[lib]\n" + lib
    # ... and the `dirsync` binary.
    text = text.replace('[[bin]]\nname = "dirsync"\n', '[[bin]]\nname = "dirsync-previous"\n')
    p.write_text(text)
p = root / "Cargo.toml"
text = re.sub(r'^(dirsync-[a-z-]+) = \{ path = "([^"]+)" \}',
              r'\1 = { path = "\2", package = "\1-previous" }', p.read_text(), flags=re.M)
p.write_text(text)
PY
  # Not --locked: the renamed packages change Cargo.lock's entries for them (and only those).
  CARGO_TARGET_DIR=$PWD/target cargo build -q --manifest-path "$tree/Cargo.toml" \
    -p dirsync-api-previous --bin dirsync-previous >&2
  mkdir -p "$(dirname "$out")"
  cp target/debug/dirsync-previous "$out"
fi
echo "$PWD/$out"
