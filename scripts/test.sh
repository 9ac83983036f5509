#!/usr/bin/env bash
# The whole test suite, as a new user and CI run it: formatting, lints, every unit and
# integration test on both stores. Installs moto (DynamoDB emulator) into a project-local
# virtual environment on first use, starts it on a free 127.0.0.1 port and always stops it.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/py
mkdir -p target
if [ ! -x "$venv/bin/moto_server" ]; then
    echo "==> installing moto[server] into $venv (first run only)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]"
fi

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$venv/bin/python" scripts/moto_server.py 127.0.0.1 "$port" > target/moto.log 2>&1 &
moto_pid=$!
# moto can take half a minute to leave while SQS long polls are open: give it 3 s, then SIGKILL.
stop_moto() {
    kill "$moto_pid" 2>/dev/null || return 0
    for _ in 1 2 3 4 5 6; do kill -0 "$moto_pid" 2>/dev/null || return 0; sleep 0.5; done
    kill -9 "$moto_pid" 2>/dev/null || true
}
trap stop_moto EXIT

export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
for _ in $(seq 1 100); do
    if python3 -c "import urllib.request; urllib.request.urlopen('$AWS_ENDPOINT_URL/moto-api/')" 2>/dev/null; then
        break
    fi
    kill -0 "$moto_pid" 2>/dev/null || { cat target/moto.log; echo "moto_server did not start"; exit 1; }
    sleep 0.2
done
echo "==> moto server on $AWS_ENDPOINT_URL"

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "==> cargo build (the binaries the tests start)"
cargo build --workspace --bins
echo "==> cfn-lint infra/template.yaml"
[ -x "$venv/bin/cfn-lint" ] || "$venv/bin/pip" install --quiet --disable-pip-version-check cfn-lint
# Its exit code is a bit mask (2 errors, 4 warnings, 8 informational; 1 a crash): errors fail.
lint=0
"$venv/bin/cfn-lint" infra/template.yaml || lint=$?
if [ "$lint" -eq 1 ] || [ $((lint & 2)) -ne 0 ]; then echo "cfn-lint: errors in infra/template.yaml"; exit 1; fi
echo "==> Lambda smoke test: cargo lambda watch against moto"
scripts/lambda_smoke.sh
echo "==> cargo test"
cargo test --workspace "$@" 2>&1 | tee target/test-output.log
scripts/graphql_fuzz.sh   # schemathesis against crm-local's /graphql: no server error
scripts/openapi_fuzz.sh   # schemathesis against crm-local's REST API from its OpenAPI document, all checks
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "all tests: %d passed, %d failed\n", p, f }' target/test-output.log
