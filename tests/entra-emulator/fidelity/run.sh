#!/usr/bin/env bash
# Fidelity test: Microsoft's Python libraries (msal, azure-identity, msgraph-sdk) against the
# Entra emulator, over HTTPS with the emulator's generated CA.
#
#   tests/entra-emulator/fidelity/run.sh [PATH_TO_entra-emulator_BINARY]
#
# Without an argument the binary is built with cargo. Needs python3 (3.9+) with venv and PyPI.
# Exits with the python test's exit code.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
python="${PYTHON:-python3}"

bin="${1:-}"
if [[ -z "$bin" ]]; then
    (cd "$root" && cargo build -q -p dirsync-entra-emulator --bin entra-emulator)
    bin="${CARGO_TARGET_DIR:-$root/target}/debug/entra-emulator"
fi
[[ -x "$bin" ]] || { echo "run.sh: no emulator binary at $bin" >&2; exit 2; }

work="$(mktemp -d)"
emu_pid=""
cleanup() {
    if [[ -n "$emu_pid" ]]; then
        kill "$emu_pid" 2>/dev/null || true
        wait "$emu_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# A venv in the temp dir (FIDELITY_VENV reuses and keeps one across runs). Where the venv module
# is missing (Debian without python3-venv), packages go to a --target directory instead.
venv="${FIDELITY_VENV:-$work/venv}"
packages=(msal azure-identity msgraph-sdk)
py=""
if [[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv" >/dev/null 2>&1; then
    py="$venv/bin/python"
    "$py" -m pip install --quiet --disable-pip-version-check "${packages[@]}"
else
    rm -rf "$venv"
    if ! "$python" -m pip --version >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
        apt-get install -y -q python3-pip >/dev/null
    fi
    "$python" -m pip install --quiet --disable-pip-version-check --target "$work/pylib" "${packages[@]}"
    export PYTHONPATH="$work/pylib${PYTHONPATH:+:$PYTHONPATH}"
    py="$python"
fi

port="$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
url="https://127.0.0.1:$port"
"$bin" --listen "127.0.0.1:$port" --users 1200 --groups 250 --seed 7 \
    --ca-file "$work/ca.pem" --credentials-file "$work/app.json" >"$work/emulator.log" 2>&1 &
emu_pid=$!

for _ in $(seq 1 300); do
    if [[ -s "$work/ca.pem" && -s "$work/app.json" ]] \
        && "$py" -c "import ssl,sys,urllib.request; urllib.request.urlopen(sys.argv[1]+'/_emulator/health', timeout=1, context=ssl.create_default_context(cafile=sys.argv[2]))" "$url" "$work/ca.pem" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$emu_pid" 2>/dev/null; then
        echo "run.sh: the emulator exited:" >&2
        cat "$work/emulator.log" >&2
        exit 2
    fi
    sleep 0.1
done

# The environment's CA bundle variables would override the libraries' own CA argument
# (requests prefers REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE to verify=, httpx reads SSL_CERT_*):
# the test must trust the emulator's CA and nothing else.
set +e
env -u REQUESTS_CA_BUNDLE -u CURL_CA_BUNDLE -u SSL_CERT_FILE -u SSL_CERT_DIR \
    "$py" "$here/test_ms_libs.py" "$url" "$work/app.json" "$work/ca.pem"
status=$?
set -e
if [[ $status -ne 0 ]]; then
    echo "--- emulator log ---" >&2
    cat "$work/emulator.log" >&2
fi
exit $status
