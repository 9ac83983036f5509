"""moto server with one request at a time.

DynamoDB applies each request atomically. moto's TransactWriteItems snapshots and restores whole
tables and is not safe when requests overlap, so concurrent clients (our invariant tests) would
see failures real DynamoDB never produces. Serialising requests restores the atomicity the
service relies on, while connections are still accepted concurrently.

usage: python scripts/moto_server.py HOST PORT
"""

import signal
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    moto_app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def one_at_a_time(environ, start_response):
        with lock:
            return list(moto_app(environ, start_response))

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    run_simple(
        host,
        port,
        one_at_a_time,
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
