#!/usr/bin/env bash
# Builds what `crm-bench init` measures into target/init-bench/ (emptied first, so nothing stale
# is measured):
#   x86_64/<name>  native release binaries, timed and their RSS read (this machine is x86_64);
#   arm64/<name>   arm64 release bootstraps as `sam build` makes them (cargo lambda), sized;
# plus the hello-lambda reference.
#   scripts/build_lambdas.sh                      sync-status and worker (below)
#   INIT_FUNCTIONS=all scripts/build_lambdas.sh   every function infra/template.yaml deploys
#   INIT_FUNCTIONS="a b" INIT_ARM64="a" ...       chosen ones (INIT_ARM64: INIT_FUNCTIONS)
#   INIT_ARM64=none scripts/build_lambdas.sh      no arm64 build (no sizes): minutes less
# Why so few by default: the whole bench must finish within 15 minutes on a fresh two-core
# machine, and measured there the arm64 dependencies alone take minutes from cold, each binary
# is one LTO link of about a minute per architecture, and graphql (its feature changes the
# features of shared dependencies) compiles the AWS SDK once more per architecture. The 16 REST
# functions are one program with another route-table name (sync-status stands for them), the
# worker for the SQS and scheduled ones.
#
# cargo unifies `common`'s features over the packages of one invocation (graphql's feature
# would land in every function built beside it), so one invocation builds only functions that
# ask for the same `common` features: each binary is the one SAM builds alone.
set -euo pipefail
cd "$(dirname "$0")/.."

all=$(sed -n 's|^ *CodeUri: \.\./functions/||p' infra/template.yaml)
functions=${INIT_FUNCTIONS:-sync-status worker}
[ "$functions" = all ] && functions=$all
arm64=${INIT_ARM64:-$functions}
[ "$arm64" = all ] && arm64=$all

target=${CARGO_TARGET_DIR:-target}
out="$target/init-bench"
rm -rf "$out"
mkdir -p "$out/x86_64" "$out/arm64"

# Groups of packages by their `common` dependency line (the features they ask for). The
# reference links no `common` and asks for no feature of what it shares with the functions, so
# it joins those that ask for none.
plain=$(grep -E '^common' functions/sync-status/Cargo.toml)
declare -A groups=(["$plain"]="hello-lambda")
for f in $functions; do
    key=$(grep -E '^common' "functions/$f/Cargo.toml")
    groups[$key]="${groups[$key]:-} $f"
done

packages() { local p; for p in "$@"; do printf -- '-p %s ' "$p"; done; }

started=$SECONDS
for key in "${!groups[@]}"; do
    # shellcheck disable=SC2046
    cargo build --quiet --release $(packages ${groups[$key]})
    for bin in ${groups[$key]}; do cp "$target/release/$bin" "$out/x86_64/$bin"; done
done
echo "==> init bench: x86_64 release build of $(ls "$out/x86_64" | wc -l) binaries: $(( SECONDS - started )) s"

if [ "$arm64" = none ]; then exit 0; fi
venv=target/py
if [ ! -x "$venv/bin/cargo-lambda" ]; then
    echo "==> installing cargo-lambda into $venv (first run only)"
    [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check cargo-lambda
fi
export PATH="$PWD/$venv/bin:$PATH"
rustup target list --installed | grep -qx aarch64-unknown-linux-gnu ||
    rustup target add aarch64-unknown-linux-gnu

started=$SECONDS
for key in "${!groups[@]}"; do
    wanted=()
    for bin in ${groups[$key]}; do
        if [ "$bin" = hello-lambda ] || [[ " $arm64 " == *" $bin "* ]]; then wanted+=("$bin"); fi
    done
    if [ ${#wanted[@]} -eq 0 ]; then continue; fi
    # shellcheck disable=SC2046
    cargo lambda build --quiet --release --arm64 $(packages "${wanted[@]}")
    for bin in "${wanted[@]}"; do cp "$target/lambda/$bin/bootstrap" "$out/arm64/$bin"; done
done
echo "==> init bench: arm64 release build of $(ls "$out/arm64" | wc -l) binaries: $(( SECONDS - started )) s"
