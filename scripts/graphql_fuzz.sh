#!/usr/bin/env bash
# Fuzzes crm-local's POST /graphql with Schemathesis (queries and mutations generated from the
# introspected schema) and fails on any server error. Uses the project venv at target/py
# (installs schemathesis on first use), runs crm-local (debug build) on a free 127.0.0.1 port
# over a temporary store, and always stops it.
#
#   scripts/graphql_fuzz.sh
#   GRAPHQL_FUZZ_EXAMPLES=2000 scripts/graphql_fuzz.sh   # default 320 per operation
set -euo pipefail
cd "$(dirname "$0")/.."

examples=${GRAPHQL_FUZZ_EXAMPLES:-320}
source scripts/fuzz_local.sh /graphql
url="http://127.0.0.1:$port/graphql"

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

# `JSON` (notify's `data`) is not a scalar schemathesis knows: any GraphQL literal is one.
cat > "$data_dir/crm_scalars.py" <<'PY'
import schemathesis
from hypothesis import strategies as st
from schemathesis.graphql import nodes

schemathesis.graphql.scalar(
    "JSON",
    st.one_of(
        st.text(max_size=50).map(nodes.String),
        st.integers().map(nodes.Int),
        st.booleans().map(nodes.Boolean),
        st.just(nodes.Null),
    ),
)
PY

echo "==> schemathesis on $url ($examples examples per operation)"
# not_a_server_error: no 5xx and no GraphQL error coded INTERNAL_SERVER_ERROR. The seed makes a
# failure reproducible.
# Run from the temporary directory, where schemathesis and hypothesis keep their caches.
status=0
root=$PWD
(cd "$data_dir" && PYTHONPATH=. SCHEMATHESIS_HOOKS=crm_scalars "$root/$venv/bin/st" --config-file schemathesis.toml run "$url" \
    --header "Authorization: Bearer $key" \
    --checks not_a_server_error \
    --max-examples "$examples" \
    --seed 20261124 \
    --workers 2 \
    --request-timeout 15 \
    --no-color) 2>&1 | tee target/graphql-fuzz.log || status=$?
fuzz_finish graphql "$status"
echo "graphql fuzz: no server error"
