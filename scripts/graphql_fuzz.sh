#!/usr/bin/env bash
# Fuzzes crm-local's POST /graphql with Schemathesis (queries and mutations generated from the
# introspected schema) and fails on any server error. Uses the project venv at target/py
# (installs schemathesis on first use), runs crm-local (debug build) on a free 127.0.0.1 port
# over a temporary store, and always stops it.
#
#   scripts/graphql_fuzz.sh
#   GRAPHQL_FUZZ_EXAMPLES=2000 scripts/graphql_fuzz.sh   # default 400 per operation, about a minute
set -euo pipefail
cd "$(dirname "$0")/.."

examples=${GRAPHQL_FUZZ_EXAMPLES:-400}
venv=target/py
if [ ! -x "$venv/bin/st" ]; then
    echo "==> installing schemathesis into $venv (first run only)"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis>=4.32,<5"
fi
cargo build --quiet --bin crm-local
crm_local=${CARGO_TARGET_DIR:-target}/debug/crm-local

data_dir=$(mktemp -d)
log="$data_dir/crm-local.log"
key="crm_fuzz_$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
CRM_DATA_DIR="$data_dir" CRM_DEV_API_KEY="$key" PORT="$port" CRM_SWEEP_INTERVAL_SECONDS=5 \
    "$crm_local" > "$log" 2>&1 &
local_pid=$!
stop() {
    kill "$local_pid" 2>/dev/null || true
    wait "$local_pid" 2>/dev/null || true
    rm -rf "$data_dir"
}
trap stop EXIT

url="http://127.0.0.1:$port/graphql"
for _ in $(seq 1 100); do
    if python3 -c "import urllib.request; urllib.request.urlopen('$url')" 2>/dev/null; then
        break
    fi
    kill -0 "$local_pid" 2>/dev/null || { cat "$log"; echo "crm-local did not start"; exit 1; }
    sleep 0.1
done

# One webhook (pointing at a closed port: attempts fail fast) and one delivery, so that
# generated queries also reach real records: a fuzz dictionary offers their ids to the id
# arguments. deleteWebhook gets none, so the records live through the run.
"$venv/bin/python" - "$port" "$key" "$data_dir/schemathesis.toml" <<'PY'
import json, sys, urllib.request

port, key, config = sys.argv[1], sys.argv[2], sys.argv[3]

def post(path, body):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.load(response)

webhook = post("/api/webhooks", {"url": "http://127.0.0.1:9/hook", "events": ["*"], "timeoutMs": 1000})["id"]
delivery = post(f"/api/webhooks/{webhook}/test", {})["deliveryId"]
bind = lambda name: f'{{ dictionary = "{name}", probability = 0.5 }}'
with open(config, "w") as out:
    out.write(f"""
[dictionaries.webhooks]
values = ["{webhook}"]
[dictionaries.deliveries]
values = ["{delivery}"]
[dictionaries.urls]
values = ["http://127.0.0.1:9/created"]
[dictionaries.events]
values = ["*", "client.*", "lead.created"]
[parameters]
"Query.webhook.id" = {bind("webhooks")}
"*.*.webhookId" = {bind("webhooks")}
"Mutation.updateWebhook.id" = {bind("webhooks")}
"Mutation.testWebhook.id" = {bind("webhooks")}
"Mutation.rotateWebhookSecret.id" = {bind("webhooks")}
"Query.webhookDelivery.id" = {bind("deliveries")}
"Mutation.retryWebhookDeliveries.deliveryIds[*]" = {bind("deliveries")}
"Mutation.*.input.url" = {bind("urls")}
"Mutation.*.input.events[*]" = {bind("events")}
""")
PY

echo "==> schemathesis on $url ($examples examples per operation)"
# not_a_server_error: no 5xx and no GraphQL error coded INTERNAL_SERVER_ERROR. The seed makes a
# failure reproducible.
# Run from the temporary directory, where schemathesis and hypothesis keep their caches.
status=0
root=$PWD
(cd "$data_dir" && "$root/$venv/bin/st" --config-file schemathesis.toml run "$url" \
    --header "Authorization: Bearer $key" \
    --checks not_a_server_error \
    --max-examples "$examples" \
    --seed 20261124 \
    --workers 2 \
    --request-timeout 15 \
    --no-color) 2>&1 | tee target/graphql-fuzz.log || status=$?
# Belt and braces: an internal error is logged by crm-local even if it were answered politely.
if grep -qi "internal error" "$log"; then
    echo "crm-local logged an internal error:"; grep -i "internal error" "$log" | head
    status=1
fi
if [ "$status" -ne 0 ]; then
    echo "graphql fuzz: FAILED (see target/graphql-fuzz.log; crm-local's log follows)"
    tail -n 50 "$log"
    exit "$status"
fi
echo "graphql fuzz: no server error"
