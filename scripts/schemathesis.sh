# Sourced by scripts/fuzz_local.sh and scripts/test.sh: installs schemathesis into the project
# venv at target/py on first use. Sets: venv.
venv=target/py
if [ ! -x "$venv/bin/st" ]; then
    echo "==> installing schemathesis into $venv (first run only)"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis>=4.32,<5"
fi
