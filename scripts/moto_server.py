"""moto server with one DynamoDB request at a time.

DynamoDB applies each request atomically. moto's TransactWriteItems snapshots and restores whole
tables and is not safe when requests overlap, so concurrent clients (our invariant tests) would
see failures real DynamoDB never produces. Serialising DynamoDB requests restores the atomicity
the service relies on. SQS requests are not serialised: a long poll must not hold up the rest.

moto's rollback snapshot copies every table a transaction names (copy.deepcopy), so one
TransactWriteItems costs time in proportion to the table: ~0.5 s at 3,000 items, which made a
1,000-delivery run take many minutes. With requests serialised, keeping copies of only the items
the transaction names and putting them back when it fails restores the same state.

moto's SQS computes every queue attribute, the message counts included, to read one of them
(ContentBasedDeduplication, for each message sent, and more on receives and deletes), and
counting walks the whole queue: with thousands of messages queued a SendMessageBatch took a
third of a second. While an SQS request that does not return or compare attributes runs, a
queue's attributes are read without the counts. And every visibility check of every queued
message read the clock through datetime arithmetic (about 15 µs): a receive from a queue of
3,000 messages took seconds. The SQS model reads it from `time.time()` instead.

usage: python scripts/moto_server.py HOST PORT
"""

import copy
import signal
import sys
import threading
import time

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


class _Cheap(threading.local):
    """Set while an SQS request runs that needs no message counts."""

    active = False


_cheap_attributes = _Cheap()


class _WithoutCounts:
    """A queue whose message counts read 0: every other attribute is the queue's own."""

    _COUNTS = (
        "approximate_number_of_messages",
        "approximate_number_of_messages_delayed",
        "approximate_number_of_messages_not_visible",
    )

    def __init__(self, queue):
        self._queue = queue

    def __getattr__(self, name):
        return 0 if name in self._COUNTS else getattr(self._queue, name)
# The requests that read or compare queue attributes whole.
_SQS_WITH_ATTRIBUTES = ("AmazonSQS.GetQueueAttributes", "AmazonSQS.CreateQueue")


def patch_sqs() -> None:
    queue = sqs_models.Queue
    all_attributes = queue.attributes.fget

    def attributes(self):
        return all_attributes(_WithoutCounts(self) if _cheap_attributes.active else self)

    queue.attributes = property(attributes)

    def unix_time(dt=None):
        return time.time() if dt is None else original_unix_time(dt)

    original_unix_time = sqs_models.unix_time
    sqs_models.unix_time = unix_time
    sqs_models.unix_time_millis = lambda dt=None: unix_time(dt) * 1000.0


def main() -> None:
    patch_transactions()
    patch_sqs()
    host, port = sys.argv[1], int(sys.argv[2])
    moto_app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def one_at_a_time(environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith("DynamoDB"):
            with lock:
                return list(moto_app(environ, start_response))
        if target.startswith("AmazonSQS.") and target not in _SQS_WITH_ATTRIBUTES:
            _cheap_attributes.active = True
            try:
                return list(moto_app(environ, start_response))
            finally:
                _cheap_attributes.active = False
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
