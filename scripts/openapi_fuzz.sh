#!/usr/bin/env bash
# Fuzzes crm-local's REST API with Schemathesis from its own OpenAPI document
# (GET /api/openapi.json): every operation, positive and negative data, stateful sequences
# through the document's links (create, then get/patch/delete/test...), and all checks: no
# server error, documented statuses, content types and response schemas, valid input accepted
# and invalid input refused. Any finding fails the run. Uses the project venv at target/py
# (installs schemathesis on first use), runs crm-local (debug build) on a free 127.0.0.1 port
# over a temporary store with the dev key, and always stops it.
#
#   scripts/openapi_fuzz.sh
#   OPENAPI_FUZZ_EXAMPLES=200 scripts/openapi_fuzz.sh   # default 100 per operation, ~1-2 minutes
set -euo pipefail
cd "$(dirname "$0")/.."

examples=${OPENAPI_FUZZ_EXAMPLES:-100}
# Generated webhooks point anywhere, and POST /api/webhooks/{id}/test sends at once: the
# production target policy (https only, no loopback/private/reserved address, checked again at
# connect time) keeps every attempt away from this machine's and its network's services, and
# a public name cannot be reached from here either. It is also the policy the document shows.
export WEBHOOK_ALLOW_PRIVATE_TARGETS=false WEBHOOK_ALLOW_HTTP=false
source scripts/fuzz_local.sh /api/openapi.json
url="http://127.0.0.1:$port/api/openapi.json"

echo "==> schemathesis on $url ($examples examples per operation, all checks)"
# The seed makes a failure reproducible. Run from the temporary directory, where schemathesis
# and hypothesis keep their caches.
status=0
root=$PWD
start=$(date +%s)
(cd "$data_dir" && "$root/$venv/bin/st" run "$url" \
    --header "Authorization: Bearer $key" \
    --checks all \
    --max-examples "$examples" \
    --seed 20261124 \
    --workers 2 \
    --request-timeout 35 \
    --no-color) 2>&1 | tee target/openapi-fuzz.log || status=$?
fuzz_finish openapi "$status"
echo "openapi fuzz: no finding in $(( $(date +%s) - start )) s"
