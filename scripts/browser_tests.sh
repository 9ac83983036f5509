#!/usr/bin/env bash
# The dashboard in a real browser: Chromium (Debian's, driven by Playwright) against crm-local
# on a free 127.0.0.1 port over a temporary store, always stopped. Run by scripts/test.sh after
# `cargo build --workspace --bins`; alone it builds crm-local first (the page is embedded in it),
# unless BROWSER_TESTS_NO_BUILD=1. Installs Playwright into the project venv (target/py) and
# chromium with apt on first use; never downloads a browser of Playwright's.
# Screenshots: target/dashboard-screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/py
mkdir -p target
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if ! "$venv/bin/python" -c 'import playwright' 2>/dev/null; then
    echo "==> installing playwright into $venv (first run only)"
    "$venv/bin/pip" install --quiet --disable-pip-version-check playwright
fi
if [ ! -x /usr/bin/chromium ]; then
    echo "==> installing chromium (first run only)"
    apt-get install -y chromium || { apt-get update && apt-get install -y chromium; }
fi

[ "${BROWSER_TESTS_NO_BUILD:-}" = 1 ] || cargo build --quiet --bin crm-local
crm_local=${CARGO_TARGET_DIR:-target}/debug/crm-local

# As scripts/fuzz_local.sh starts it (without its schemathesis): a fresh store and admin key.
data_dir=$(mktemp -d)
log="$data_dir/crm-local.log"
key="crm_browser_$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# crm-local lets webhooks target http:// and 127.0.0.1 (the test's receiver); said explicitly.
WEBHOOK_ALLOW_HTTP=true WEBHOOK_ALLOW_PRIVATE_TARGETS=true \
CRM_DATA_DIR="$data_dir" CRM_DEV_API_KEY="$key" PORT="$port" CRM_SWEEP_INTERVAL_SECONDS=5 \
    "$crm_local" > "$log" 2>&1 &
local_pid=$!
stop_local() {
    kill "$local_pid" 2>/dev/null || true
    wait "$local_pid" 2>/dev/null || true
    rm -rf "$data_dir"
}
trap stop_local EXIT

base="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
    if python3 -c "import urllib.request; urllib.request.urlopen('$base/')" 2>/dev/null; then
        break
    fi
    kill -0 "$local_pid" 2>/dev/null || { cat "$log"; echo "crm-local did not start"; exit 1; }
    sleep 0.1
done

shots=target/dashboard-screenshots
rm -rf "$shots"
status=0
"$venv/bin/python" scripts/browser_test.py "$base" "$key" "$shots" || status=$?
if grep -qi "internal error" "$log"; then
    echo "crm-local logged an internal error:"; grep -i "internal error" "$log" | head
    status=1
fi
if [ "$status" -ne 0 ]; then
    echo "browser tests: FAILED (screenshots in $shots; crm-local's log follows)"
    tail -n 50 "$log"
    exit "$status"
fi
echo "browser tests: passed"
