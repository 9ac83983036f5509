#!/usr/bin/env bash
# Benchmarks: builds in release mode and prints tables (figures beside their references).
# Reports only; never fails on a figure. `--quick` for a short run.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p crm-local -p crm-bench
target/release/crm-bench "$@"
