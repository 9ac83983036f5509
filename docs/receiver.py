#!/usr/bin/env python3
"""A webhook receiver to watch crm-webhooks deliveries arrive: Python 3, standard library only.

    python3 docs/receiver.py PORT SECRET [SECRET ...]

Listens on http://127.0.0.1:PORT (any path), prints each delivery, and answers 200 when its
`X-Webhook-Signature` verifies with any of the secrets given, 401 otherwise. Any of several:
during a secret rotation a receiver holds the new secret and the old one (see the README's
"Rotating a secret"). It also checks the Standard Webhooks `webhook-signature`, which lists one
signature per secret during a rotation, and prints which secret each one verified with.
crm-local accepts http:// and 127.0.0.1 webhook URLs, so this runs beside it as it is.
"""

import base64
import hashlib
import hmac
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def seed_signature(secret, body):
    """Seed 000: hex HMAC-SHA256 of the body, keyed with the secret string as the API gave it."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def standard_signature(secret, msg_id, timestamp, body):
    """Standard Webhooks: base64 HMAC-SHA256 of "id.timestamp.body", keyed with the bytes that
    the base64 after `whsec_` decodes to."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def which_secret(secrets, matches):
    """The number (1, 2, ...) of the first secret for which `matches(secret)` holds, or None."""
    return next((n for n, secret in enumerate(secrets, 1) if matches(secret)), None)


class Receiver(BaseHTTPRequestHandler):
    secrets = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        header = self.headers.get
        seed = which_secret(
            self.secrets,
            lambda s: hmac.compare_digest(seed_signature(s, body), header("X-Webhook-Signature", "")),
        )
        listed = [e.removeprefix("v1,") for e in header("webhook-signature", "").split()]
        standard = which_secret(
            self.secrets,
            lambda s: any(
                hmac.compare_digest(
                    standard_signature(s, header("webhook-id"), header("webhook-timestamp"), body), e
                )
                for e in listed
            ),
        )
        print(
            f"{header('X-Webhook-Event')} delivery {header('X-Webhook-Delivery')}"
            f" retry {header('X-Webhook-Retry', '-')}:"
            f" X-Webhook-Signature {f'ok (secret {seed})' if seed else 'BAD'},"
            f" webhook-signature {f'ok (secret {standard})' if standard else 'BAD'}"
            f" ({len(listed)} listed)"
        )
        print("  " + body.decode(), flush=True)
        self.send_response(200 if seed else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format, *args):
        pass  # one line per delivery is printed above


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    Receiver.secrets = sys.argv[2:]
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Receiver)
    print(f"receiver on http://127.0.0.1:{sys.argv[1]}/ with {len(Receiver.secrets)} secret(s)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
