#!/usr/bin/env bash
# The whole test suite, as a new user and CI run it: formatting, lints, every unit and
# integration test on both stores, the fuzzers and the dashboard in a real browser. Installs moto
# (DynamoDB emulator), Playwright and Debian's chromium on first use, starts moto on a free
# 127.0.0.1 port and always stops it.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/moto.sh

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
# A function built alone, as SAM builds it: `common` without the features the workspace unifies
# (no embedded store, GraphQL, KMS or sealing code). It must compile, warning-free, on its own.
cargo clippy --quiet -p sync-status -- -D warnings
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
# tests/it/metrics.rs parses crm-local's GET /metrics with Prometheus's own Python parser.
"$venv/bin/python" -c "import prometheus_client" 2>/dev/null ||
    "$venv/bin/pip" install --quiet --disable-pip-version-check prometheus-client
echo "==> cargo test"
cargo test --workspace "$@" 2>&1 | tee target/test-output.log
# The two fuzzers run side by side, each against its own crm-local (a free port, its own
# store): together they take little more than the longer one. Schemathesis is installed first,
# so that they do not both install it.
source scripts/schemathesis.sh
scripts/graphql_fuzz.sh > target/graphql-fuzz-run.log 2>&1 &   # /graphql: no server error
graphql_fuzz=$!
openapi=0
scripts/openapi_fuzz.sh || openapi=$?   # the REST API from its OpenAPI document, all checks
graphql=0
wait "$graphql_fuzz" || graphql=$?
cat target/graphql-fuzz-run.log
if [ "$openapi" -ne 0 ] || [ "$graphql" -ne 0 ]; then
    echo "fuzzers: openapi exit $openapi, graphql exit $graphql"
    exit 1
fi
BROWSER_TESTS_NO_BUILD=1 scripts/browser_tests.sh   # the dashboard in Chromium (installed on first use)
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "all tests: %d passed, %d failed\n", p, f }' target/test-output.log
