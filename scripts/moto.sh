# Sourced by scripts/test.sh and scripts/bench.sh: installs moto[server] into the project-local
# virtual environment on first use, starts it on a free 127.0.0.1 port, exports the AWS settings
# that point the SDK at it, and stops it when the calling script exits.
venv=target/py
mkdir -p target
if [ ! -x "$venv/bin/moto_server" ]; then
    echo "==> installing moto[server] into $venv (first run only)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]"
fi

moto_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$venv/bin/python" scripts/moto_server.py 127.0.0.1 "$moto_port" > target/moto.log 2>&1 &
moto_pid=$!
# moto can take half a minute to leave while SQS long polls are open: give it 3 s, then SIGKILL.
stop_moto() {
    kill "$moto_pid" 2>/dev/null || return 0
    for _ in 1 2 3 4 5 6; do kill -0 "$moto_pid" 2>/dev/null || return 0; sleep 0.5; done
    kill -9 "$moto_pid" 2>/dev/null || true
}
trap stop_moto EXIT

export AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port"
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
