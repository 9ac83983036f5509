#!/usr/bin/env bash
# The Lambda functions as `cargo lambda watch` runs them on a laptop, against the AWS APIs that
# moto emulates: create the table and the queue with crm-admin, a tenant and its key, start the
# watch server on 127.0.0.1, create a client through the `clients` function and read the
# counters through the `sync-status` function. Always stops the server. scripts/test.sh calls it with moto running
# (AWS_ENDPOINT_URL set) after building the binaries; installs cargo-lambda into target/py once.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${AWS_ENDPOINT_URL:?run from scripts/test.sh, which starts moto and sets AWS_ENDPOINT_URL}"

venv=target/py
if [ ! -x "$venv/bin/cargo-lambda" ]; then
    echo "==> installing cargo-lambda into $venv (first run only)"
    "$venv/bin/pip" install --quiet --disable-pip-version-check cargo-lambda
fi
export PATH="$PWD/$venv/bin:$PATH"

target_dir=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
admin="$target_dir/debug/crm-admin"
[ -x "$admin" ] || { echo "lambda smoke: $admin is missing: cargo build --workspace --bins first"; exit 1; }

# A table and a delivery queue of their own on the shared emulator, so that nothing else sees them.
export CRM_TABLE="crm-smoke-$$-$RANDOM"
created=$("$admin" create-tables)
echo "$created"
CRM_QUEUE_URL=$(printf '%s\n' "$created" | sed -n 's/^export CRM_QUEUE_URL=//p')
[ -n "$CRM_QUEUE_URL" ] || { echo "lambda smoke: crm-admin create-tables printed no queue URL"; exit 1; }
export CRM_QUEUE_URL
key=$("$admin" create-tenant "Smoke Ltd" | sed -n 's/^ADMIN API key (shown once): //p')
[ -n "$key" ] || { echo "lambda smoke: crm-admin printed no key"; exit 1; }

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log="$target_dir/lambda-watch.log"
# Its own process group: the functions it starts stop with it.
setsid cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$port" --timeout 120 \
    --ignore-changes > "$log" 2>&1 &
watch_pid=$!
stop_watch() {
    kill -TERM -- "-$watch_pid" 2>/dev/null || true
    wait "$watch_pid" 2>/dev/null || true
}
trap stop_watch EXIT

base="http://127.0.0.1:$port/lambda-url"
for _ in $(seq 1 150); do
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/" && break
    kill -0 "$watch_pid" 2>/dev/null || { cat "$log"; echo "lambda smoke: cargo lambda watch exited"; exit 1; }
    sleep 0.2
done

# call FUNCTION METHOD PATH [BODY]: prints "<status> <body>"; the first call of a function builds
# and starts it.
call() {
    local function=$1 method=$2 path=$3 body=${4:-}
    local args=(-s -X "$method" -H "Authorization: Bearer $key" -w '\n%{http_code}' --max-time 300)
    [ -n "$body" ] && args+=(-H 'Content-Type: application/json' -d "$body")
    local out
    out=$(curl "${args[@]}" "$base/$function$path") || { cat "$log"; echo "lambda smoke: $method $path failed"; exit 1; }
    printf '%s %s\n' "${out##*$'\n'}" "${out%$'\n'*}"
}

# expect WHAT "<status> <body>" STATUS PYTHON-CHECK-ON-body
expect() {
    local what=$1 response=$2 status=$3 check=$4
    if [ "${response%% *}" != "$status" ] ||
        ! python3 -c "import json, sys; body = json.loads(sys.argv[1]); sys.exit(0 if ($check) else 1)" "${response#* }"; then
        cat "$log"
        echo "lambda smoke: $what: expected $status with $check, got: $response"
        exit 1
    fi
    echo "    $what: ${response}"
}

echo "==> cargo lambda watch on 127.0.0.1:$port (table $CRM_TABLE on $AWS_ENDPOINT_URL)"
created=$(call clients POST /api/clients '{"name":"Smoke client","company":"Lambda"}')
expect "clients: POST /api/clients" "$created" 201 'body["name"] == "Smoke client" and body["syncStatus"] == "NEEDS_UPDATE"'
counts=$(call sync-status GET /api/crm/sync-status)
expect "sync-status: GET /api/crm/sync-status" "$counts" 200 'body["totalClients"] == 1 and body["needsUpdateClients"] == 1'
echo "lambda smoke: 2 functions answered through cargo lambda watch"
