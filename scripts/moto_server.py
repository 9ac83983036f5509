"""moto server with one DynamoDB request at a time.

DynamoDB applies each request atomically. moto's TransactWriteItems snapshots and restores whole
tables and is not safe when requests overlap, so concurrent clients (our invariant tests) would
see failures real DynamoDB never produces. Serialising DynamoDB requests restores the atomicity
the service relies on. SQS requests are not serialised: a long poll must not hold up the rest.

moto's rollback snapshot copies every table a transaction names (copy.deepcopy), so one
TransactWriteItems costs time in proportion to the table: ~0.5 s at 3,000 items, which made a
1,000-delivery run take many minutes. With requests serialised, keeping copies of only the items
the transaction names and putting them back when it fails restores the same state.

moto's SQS computes every queue attribute, the message counts included, for each message it
sends (to read ContentBasedDeduplication), and counting walks the whole queue: with thousands
of messages queued a SendMessageBatch took a third of a second. While a send runs, the queue
answers that one attribute without counting.

usage: python scripts/moto_server.py HOST PORT
"""

import copy
import signal
import sys
import threading

from moto.dynamodb import models as dynamodb_models
from moto.sqs import models as sqs_models
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


class _CopyKeepingTables:
    """`copy` as moto.dynamodb.models sees it: a Table "copy" is the table itself."""

    @staticmethod
    def deepcopy(value, memo=None):
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _transact_with_item_snapshots(original):
    def transact_write_items(backend, transact_items):
        saved = []
        for entry in transact_items:
            op = next(iter(entry.values()))
            table = backend.tables.get(op.get("TableName"))
            keys = op.get("Key") or op.get("Item") or {}
            if table is None or table.hash_key_attr not in keys:
                continue
            hash_key = DynamoType(keys[table.hash_key_attr])
            range_key = None
            if table.range_key_attr and table.range_key_attr in keys:
                range_key = DynamoType(keys[table.range_key_attr])
            item = table.get_item(hash_key, range_key)
            saved.append((table, hash_key, range_key, copy.deepcopy(item)))
        try:
            return original(backend, transact_items)
        except Exception:
            for table, hash_key, range_key, item in saved:
                table.delete_item(hash_key, range_key)
                if item is not None and range_key is not None:
                    table.items[hash_key][range_key] = item
                elif item is not None:
                    table.items[hash_key] = item
            raise

    return transact_write_items


def patch_transactions() -> None:
    dynamodb_models.copy = _CopyKeepingTables
    backend = dynamodb_models.DynamoDBBackend
    backend.transact_write_items = _transact_with_item_snapshots(backend.transact_write_items)


class _Sending(threading.local):
    active = False


_sending = _Sending()


def patch_sqs_sends() -> None:
    queue = sqs_models.Queue
    all_attributes = queue.attributes.fget

    def attributes(self):
        if _sending.active:
            deduplication = getattr(self, "content_based_deduplication", False)
            return {"ContentBasedDeduplication": str(bool(deduplication)).lower()}
        return all_attributes(self)

    queue.attributes = property(attributes)
    backend = sqs_models.SQSBackend
    send_message = backend.send_message

    def send_without_counting(self, *args, **kwargs):
        _sending.active = True
        try:
            return send_message(self, *args, **kwargs)
        finally:
            _sending.active = False

    backend.send_message = send_without_counting


def main() -> None:
    patch_transactions()
    patch_sqs_sends()
    host, port = sys.argv[1], int(sys.argv[2])
    moto_app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def one_at_a_time(environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
            with lock:
                return list(moto_app(environ, start_response))
        return moto_app(environ, start_response)

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
