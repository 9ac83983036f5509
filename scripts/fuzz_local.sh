# Sourced by scripts/graphql_fuzz.sh and scripts/openapi_fuzz.sh: installs schemathesis into
# the project venv at target/py on first use, builds crm-local (debug), starts it on a free
# 127.0.0.1 port over a temporary store with a fresh dev key (extra settings from the
# caller's environment pass through), waits until `$1` (a path) answers, and stops it and
# removes the store when the calling script exits. Sets: venv, key, port, data_dir, log.
#   fuzz_finish NAME STATUS    fails on a finding or on an internal error crm-local logged.

source scripts/schemathesis.sh
cargo build --quiet --bin crm-local
crm_local=${CARGO_TARGET_DIR:-target}/debug/crm-local

data_dir=$(mktemp -d)
log="$data_dir/crm-local.log"
key="crm_fuzz_$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
CRM_DATA_DIR="$data_dir" CRM_DEV_API_KEY="$key" PORT="$port" CRM_SWEEP_INTERVAL_SECONDS=5 \
    "$crm_local" > "$log" 2>&1 &
local_pid=$!
stop_local() {
    kill "$local_pid" 2>/dev/null || true
    wait "$local_pid" 2>/dev/null || true
    rm -rf "$data_dir"
}
trap stop_local EXIT

ready="http://127.0.0.1:$port$1"
for _ in $(seq 1 100); do
    if python3 -c "import urllib.request; urllib.request.urlopen('$ready')" 2>/dev/null; then
        break
    fi
    kill -0 "$local_pid" 2>/dev/null || { cat "$log"; echo "crm-local did not start"; exit 1; }
    sleep 0.1
done

fuzz_finish() {
    local name=$1 status=$2
    # Belt and braces: an internal error is logged by crm-local even if it were answered politely.
    if grep -qi "internal error" "$log"; then
        echo "crm-local logged an internal error:"; grep -i "internal error" "$log" | head
        status=1
    fi
    if [ "$status" -ne 0 ]; then
        echo "$name fuzz: FAILED (see target/$name-fuzz.log; crm-local's log follows)"
        tail -n 50 "$log"
        exit "$status"
    fi
}
