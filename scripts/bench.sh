#!/usr/bin/env bash
# Benchmarks: builds in release mode and prints tables, each figure beside a reference measured
# in the same run. Reports only; never fails on a figure.
#   scripts/bench.sh [--quick] [SECTION...]     (sections: see `crm-bench --help` / bench/src/main.rs)
# Starts moto (DynamoDB and SQS) for the sections that measure the AWS adapters.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

source scripts/moto.sh

echo "==> cargo build --release (crm-local, crm-bench)"
cargo build --release -p crm-local -p crm-bench
# The init section measures each Lambda binary as SAM builds it: built apart, only when it runs.
sections=$(printf '%s\n' "$@" | grep -v '^--' || true)
if [ -z "$sections" ] || grep -qx init <<< "$sections"; then
    scripts/build_lambdas.sh
fi
target/release/crm-bench "$@"
echo
echo "bench: $(( $(date +%s) - started )) s in all"
