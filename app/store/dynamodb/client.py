"""What every part of the DynamoDB store shares: the limits, items to and from plain records,
key and bucket helpers, and `DynamoDBBase`, the lazy client with the requests built on it
(queries page by page, batches resent until done, conditional puts, transactions).
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from decimal import Decimal
from typing import Callable, Iterable, Iterator

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ..records import (
    DAY_MS, EVENT_FIELDS, FIVE_MINUTES_MS, HOUR_MS, MINUTE_MS, RAW_RETENTION_MS, ROLLUP_RETENTION_DAYS,
    StoreError, month_start_day,
)

# 16 shards x 1,000 writes/s per partition: a site at 10,000 events/s keeps every shard of its
# hot keys near 60% of a partition's limit. Reads merge shards 0..N-1, so N may only grow.
DEFAULT_SHARDS = 16
# AWS limits, enforced here because moto accepts more.
MAX_BATCH_WRITE = 25
MAX_BATCH_GET = 100
MAX_TRANSACTION_ACTIONS = 100
ATTEMPTS = 6  # tries for unprocessed batch items and conflicting transactions
BACKOFF_BASE_S = 0.05
EVENT_REQUIRED = ("site_id", "event_id", "type", "ts", "received_ms", "user_id", "session_id")
REGISTRY_PK = "REGISTRY"  # one item per site id with stored data: what purge walks (`deleting`: all of it goes)
HORIZON_SK = "~horizon"  # in the registry's partition, never a site id: the last purge's "now" (retention.py)
POOL_THREADS = "dynamodb-pool"  # the name of the threads `_map` sends requests from
FAR_FUTURE_MS = 2 ** 62  # "now" for a purge that deletes everything of a site
MAX_PLAIN_SORT_VALUE = 400  # bytes of a value kept readable in a sort key (limit: 1,024)
# When a bucket of each grain is past retention, as SQLite's purge decides it (days keep a
# day of margin for time zones): the TTL of counter and sketch items.
BUCKET_MS = {"hour": HOUR_MS, "5min": FIVE_MINUTES_MS, "minute": MINUTE_MS, "day": DAY_MS}
BUCKET_RETENTION_MS = {"hour": HOUR_MS + ROLLUP_RETENTION_DAYS * DAY_MS,
                       "5min": FIVE_MINUTES_MS + RAW_RETENTION_MS, "minute": MINUTE_MS + RAW_RETENTION_MS,
                       "day": 2 * DAY_MS + ROLLUP_RETENTION_DAYS * DAY_MS}

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_item(record: dict) -> dict:
    """A plain record as DynamoDB attribute values (floats travel as exact decimals)."""
    return {name: _serializer.serialize(Decimal(repr(value)) if isinstance(value, float) else value)
            for name, value in record.items()}


def from_item(item: dict) -> dict:
    """DynamoDB attribute values as a plain record, numbers as int or float."""
    return {name: _plain(_deserializer.deserialize(value)) for name, value in item.items()}


def _plain(value):
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):  # e.g. a site's goals: maps in a list
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def event_from_item(item: dict) -> dict:
    """The stored event record in an events-table item (a query result or a stream NEW_IMAGE)."""
    data = from_item(item)
    missing = [name for name in EVENT_REQUIRED if data.get(name) is None]
    if missing:
        raise ValueError(f"not an event item: no {', '.join(missing)}")
    event = {name: data.get(name) for name in EVENT_FIELDS}
    event["props"] = json.loads(event["props"] or "{}")
    return event


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _expires_s(basis_ms: int, retention_ms: int) -> int:
    """The TTL attribute: epoch seconds after which DynamoDB may delete the item."""
    return (basis_ms + retention_ms) // 1000


def _bucket_expires_s(grain: str, bucket: int) -> int:
    if grain == "month":  # a month goes when its last day does
        return _expires_s((month_start_day(bucket + 1) - 1) * DAY_MS, BUCKET_RETENTION_MS["day"])
    return _expires_s(bucket * BUCKET_MS[grain], BUCKET_RETENTION_MS[grain])


def _bucket_sort_key(bucket: int, value: str) -> str:
    """`bucket#value` with a zero-padded bucket, so one key range covers a range of buckets.
    A value too long for a sort key is stored as `bucket~prefix digest` (its own namespace);
    items keep the full value in their `value` attribute either way."""
    if len(value.encode()) <= MAX_PLAIN_SORT_VALUE:
        return f"{bucket:010d}#{value}"
    return f"{bucket:010d}~{value[:100]} {hashlib.sha256(value.encode()).hexdigest()}"


def _if_unchanged(etag: str | None) -> dict:
    """The condition that the item is still the version read (or still absent)."""
    if etag is None:
        return {"ConditionExpression": "attribute_not_exists(pk)"}
    return {"ConditionExpression": "etag = :etag", "ExpressionAttributeValues": {":etag": {"S": etag}}}


class DynamoDBBase:
    """The lazy client and the requests every part makes with it: errors, shards, pages, batches, conditions."""

    def __init__(self, prefix: str, shards: int | None = None, endpoint_url: str | None = None):
        self.prefix = prefix
        self.shards = shards or int(os.environ.get("LIVEINSIGHT_DYNAMODB_SHARDS", DEFAULT_SHARDS))
        self.endpoint_url = endpoint_url or os.environ.get("LIVEINSIGHT_DYNAMODB_ENDPOINT") or None
        self.sites_table = f"{prefix}-sites"
        self.events_table = f"{prefix}-events"
        self.aggregates_table = f"{prefix}-aggregates"
        self.accounts_table = f"{prefix}-accounts"
        self._client = None
        self._client_lock = threading.Lock()  # the query threads share one client
        self._pool: ThreadPoolExecutor | None = None
        self._registered: set[str] = set()
        self._listed: set[tuple[str, str]] = set()  # (site, statistics partition) listed (retention.py)
        self._wide_live: set[tuple[str, int]] = set()  # (site, minute) whose live item is full (traffic.py)
        self._horizon: tuple[float, int] | None = None  # (read at, monotonic; the last purge's now, s)
        self._moment = threading.local()  # a request's reads in `one_moment` (traffic.py)
        self._sleep = time.sleep
        self._now_ms: Callable[[], int] = lambda: int(time.time() * 1000)  # the journal's clock (journal.py)
        # How long counter deltas may wait in the journal to be merged with later ones (journal.py).
        self.counter_delay_ms = int(float(os.environ.get("LIVEINSIGHT_COUNTER_DELAY_S", 0)) * 1000)

    # -- clients: created on first use
    def _config(self) -> Config:
        return Config(retries={"mode": "standard"}, connect_timeout=2, read_timeout=5,
                      max_pool_connections=self.shards + 4)

    @property
    def client(self):
        with self._client_lock:
            if self._client is None:
                self._client = boto3.session.Session().client(
                    "dynamodb", endpoint_url=self.endpoint_url, config=self._config())
        return self._client

    def _map(self, function: Callable, items: Iterable) -> list:
        """Run independent requests in parallel: a request costs a network round trip. From one
        of the pool's own threads they run in it, one after another: a worker waiting on work
        queued behind it, with every worker waiting so, would wait forever."""
        items = list(items)
        if len(items) < 2 or threading.current_thread().name.startswith(POOL_THREADS):
            return [function(item) for item in items]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.shards, thread_name_prefix=POOL_THREADS)
        return list(self._pool.map(function, items))

    def _fan_out(self, per_shard: Callable[[int], list], shards: int | None = None) -> list:
        """One query per write shard, results concatenated."""
        return [item for items in self._map(per_shard, range(shards or self.shards)) for item in items]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (BotoCoreError, ClientError) as exc:
            raise StoreError(f"dynamodb: {exc}") from exc

    def _shard(self, key: str) -> int:
        return zlib.crc32(key.encode()) % self.shards  # stable across processes, unlike hash()

    def _backoff(self, attempt: int) -> None:
        """Exponential backoff with jitter, so retrying writers do not collide again."""
        self._sleep(BACKOFF_BASE_S * 2 ** attempt * random.uniform(0.5, 1))

    def transaction(self):
        """A no-op: DynamoDB has no multi-request transaction to wrap ingestion in. Appends are
        idempotent instead, and the stream function aggregates each event exactly once."""
        return nullcontext()

    # -- requests: pages, batches and conditional writes
    def _query(self, **params) -> list[dict]:
        """Every item of a Query, following pages (or the first page when a Limit is given)."""
        return [item for page in self._query_pages(**params) for item in page]

    def _query_pages(self, **params) -> Iterator[list[dict]]:
        """A Query's items a page (up to 1 MB) at a time, for a caller that need not hold them all."""
        while True:
            page = self.client.query(**params)
            yield page["Items"]
            if "Limit" in params or "LastEvaluatedKey" not in page:
                return
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _batch_get(self, table: str, keys: list[dict], consistent: bool = False) -> list[dict]:
        items: list[dict] = []
        for chunk in _chunks(keys, MAX_BATCH_GET):
            def send(pending: list[dict]) -> tuple[list[dict], list[dict]]:
                answer = self.client.batch_get_item(
                    RequestItems={table: {"Keys": pending, "ConsistentRead": consistent}})
                return (answer["Responses"].get(table, []),
                        answer.get("UnprocessedKeys", {}).get(table, {}).get("Keys", []))
            items += self._until_done(send, chunk, "reads")
        return items

    def _batch_write(self, table: str, requests: list[dict]) -> None:
        for chunk in _chunks(requests, MAX_BATCH_WRITE):
            def send(pending: list[dict]) -> tuple[list, list[dict]]:
                answer = self.client.batch_write_item(RequestItems={table: pending})
                return [], answer.get("UnprocessedItems", {}).get(table, [])
            self._until_done(send, chunk, "writes")

    def _until_done(self, send: Callable[[list], tuple[list, list]], pending: list, what: str) -> list:
        """Send a batch request again with what DynamoDB left unprocessed, backing off between
        tries; fail with StoreError (a 503 for the tracker, which retries) rather than drop any."""
        results: list = []
        for attempt in range(ATTEMPTS):
            if attempt:
                self._backoff(attempt - 1)
            done, pending = send(pending)
            results += done
            if not pending:
                return results
        raise StoreError(f"dynamodb: {len(pending)} {what} still unprocessed after {ATTEMPTS} attempts")

    def _put_if(self, put: dict) -> bool:
        try:
            self.client.put_item(**put)
            return True
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise

    def _transact(self, actions: list[dict]) -> bool:
        """False when DynamoDB cancelled the transaction (a condition failed or a concurrent
        transaction touched an item); nothing was written then."""
        try:
            self.client.transact_write_items(TransactItems=actions)
            return True
        except ClientError as exc:
            if _code(exc) == "TransactionCanceledException":
                return False
            raise

    @staticmethod
    def _key(pk: str, sk: str) -> dict:
        return {"pk": {"S": pk}, "sk": {"S": sk}}

    def _delete_each(self, table: str, items: list[dict]) -> None:
        """One DeleteItem per item, in parallel: what the web function may do to the traffic
        tables (BatchWriteItem could also put any item, which IAM cannot tell apart)."""
        self._map(lambda item: self.client.delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]}),
                  items)

    def _delete(self, table: str, items: list[dict]) -> None:
        self._batch_write(table, [{"DeleteRequest": {"Key": {"pk": item["pk"], "sk": item["sk"]}}}
                                  for item in items])
