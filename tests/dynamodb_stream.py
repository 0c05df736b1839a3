"""The events table's stream, read the way Lambda's poller reads it: by shard iterator, each
shard from where the last read stopped. Tests only (on AWS, Lambda reads the stream and calls
the stream function); `stream_records(store)` returns the records written since the last call,
shaped like the `Records` of a Lambda event.

Every loop here is bounded and fails loudly: a stream that hands a record back again (as
moto's did when two threads put at once, see `serialise_stream_numbering`) or never runs dry is
a broken test harness, not something to wait out.
"""
from __future__ import annotations

import threading
import weakref

import boto3
from botocore.config import Config

MAX_PAGES = 1_000  # get_records pages one read may take (moto: up to 1,000 records a page)

_readers: "weakref.WeakKeyDictionary[object, StreamReader]" = weakref.WeakKeyDictionary()


def stream_records(store) -> list[dict]:
    """The stream records of the store's events table since the last call."""
    if store not in _readers:
        _readers[store] = StreamReader(store.client, store.events_table, store.endpoint_url)
    return _readers[store].read()


class StreamReader:
    def __init__(self, dynamodb, table: str, endpoint_url: str | None = None):
        self.dynamodb, self.table = dynamodb, table
        self.streams = boto3.session.Session().client(
            "dynamodbstreams", endpoint_url=endpoint_url,
            config=Config(retries={"mode": "standard"}, connect_timeout=2, read_timeout=5))
        self.iterators: dict[str, str] = {}  # shard id -> where the next read starts
        self.last: dict[str, int] = {}  # shard id -> the last sequence number read

    def read(self) -> list[dict]:
        arn = self.dynamodb.describe_table(TableName=self.table)["Table"]["LatestStreamArn"]
        shards = self.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
        return [self._lambda_record(record, arn) for shard in shards
                for record in self._read_shard(arn, shard["ShardId"])]

    def _read_shard(self, arn: str, shard_id: str) -> list[dict]:
        iterator = self.iterators.get(shard_id) or self.streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        records: list[dict] = []
        for _ in range(MAX_PAGES):
            page = self.streams.get_records(ShardIterator=iterator)
            iterator = page.get("NextShardIterator") or iterator
            for record in page["Records"]:
                number = int(record["dynamodb"]["SequenceNumber"])
                if number <= self.last.get(shard_id, -1):
                    raise AssertionError(
                        f"stream shard {shard_id} handed back sequence number {number} after "
                        f"{self.last[shard_id]}: two records share a number (writes not serialised?)")
                self.last[shard_id] = number
            records += page["Records"]
            if not page["Records"]:
                self.iterators[shard_id] = iterator
                return records
        raise AssertionError(f"stream shard {shard_id} still had records after {MAX_PAGES} pages")

    @staticmethod
    def _lambda_record(record: dict, arn: str) -> dict:
        change = dict(record["dynamodb"])
        change["ApproximateCreationDateTime"] = change["ApproximateCreationDateTime"].timestamp()
        return {**record, "dynamodb": change, "eventSourceARN": arn}


def serialise_stream_numbering(setattr_=setattr) -> None:
    """moto 5.2 numbers a stream record `len(records) + start` and appends it without a lock, so
    two puts from two threads (the store writes a batch's events in parallel, as it should on
    AWS, where numbers are unique) could get one number; a reader then got the same record back
    for ever. Number and append under one lock, as AWS's numbering behaves. Pass
    `monkeypatch.setattr` to undo it after a test."""
    from moto.dynamodb.models.table import StreamShard
    add, lock = StreamShard.add, threading.Lock()

    def locked_add(self, old, new):
        with lock:
            return add(self, old, new)
    setattr_(StreamShard, "add", locked_add)
