"""DynamoDB backend: four on-demand tables, `<prefix>-sites`, `<prefix>-accounts`, `<prefix>-events`
and `<prefix>-aggregates`, designed from the access patterns in docs/dynamodb.md.

- Raw events are keyed `site#session` so the events table's stream hands the aggregator each
  session's events in order; a conditional put makes a duplicate a no-op with no stream record.
- The event log is the events table's stream, read by Lambda (`reads_own_log = False`): the
  stream function calls `fold`, which applies each event exactly once in a transaction with a
  marker per event (unique-visitor sketches are unions, so they are simply updated before it).
- Keys that one busy site would make hot (its time-ordered indexes, its counters and sketches)
  are split over `shards` write shards; reads query every shard and merge.
- Nothing on a request path scans; `purge` deletes through the time-ordered indexes (TTL does
  the same for free on AWS, but moto and DynamoDB Local never expire items).

Clients are created on first use, never at import: moto must be active before one exists.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import random
import secrets
import threading
import time
import zlib
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, fields
from decimal import Decimal
from operator import itemgetter
from typing import Callable, Iterable, Iterator

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .base import Fold, Store
from .records import (
    DAY_MS, EVENT_FIELDS, FIVE_MINUTES_MS, HOUR_MS, RAW_RETENTION_MS, ROLLUP_RETENTION_DAYS,
    ApiKey, AuditEntry, Changes, Conflict, CounterKey, CounterRow, FoldResult, Invitation, LiveSession, LogEntry,
    Login, Membership, PublicLink, Session, Site, SketchRow, StoreError, UniqueKey, User, Visitor, VisitorData,
    month_start_day,
)

log = logging.getLogger(__name__)

# 16 shards x 1,000 writes/s per partition: a site at 10,000 events/s keeps every shard of its
# hot keys near 60% of a partition's limit. Reads merge shards 0..N-1, so N may only grow.
DEFAULT_SHARDS = 16
# AWS limits, enforced here because moto accepts more.
MAX_BATCH_WRITE = 25
MAX_BATCH_GET = 100
MAX_TRANSACTION_ACTIONS = 100
PACK_EVENTS = 25  # events per aggregation transaction: their markers leave room for the rest
ATTEMPTS = 6  # tries for unprocessed batch items and conflicting transactions
BACKOFF_BASE_S = 0.05

SITE_FIELDS = tuple(f.name for f in fields(Site))
USER_FIELDS = tuple(f.name for f in fields(User))
MEMBERSHIP_FIELDS = tuple(f.name for f in fields(Membership))
LINK_FIELDS = tuple(f.name for f in fields(PublicLink))
INVITATION_FIELDS = tuple(f.name for f in fields(Invitation))
API_KEY_FIELDS = tuple(f.name for f in fields(ApiKey))
AUDIT_FIELDS = tuple(f.name for f in fields(AuditEntry))
FAR_FUTURE_MS = 2 ** 62  # "now" for a purge that deletes everything of a site
SESSION_FIELDS = tuple(f.name for f in fields(Session))
VISITOR_FIELDS = tuple(f.name for f in fields(Visitor))
# What the realtime widgets read of a live visit (LiveSession), all the `live` index holds.
LIVE_FIELDS = ("user_id", "exit_path", "source")
EVENT_REQUIRED = ("site_id", "event_id", "type", "ts", "received_ms", "user_id", "session_id")
REGISTRY_PK = "REGISTRY"  # one item per site id with stored data: what purge walks
EXPIRING_KINDS = {"V#": "visitors", "C#": "counters", "U#": "sketches"}  # in the expiry index
MAX_PLAIN_SORT_VALUE = 400  # bytes of a value kept readable in a sort key (limit: 1,024)
# When a bucket of each grain is past retention, as SQLite's purge decides it (days keep a
# day of margin for time zones): the TTL of counter and sketch items.
BUCKET_MS = {"hour": HOUR_MS, "5min": FIVE_MINUTES_MS, "day": DAY_MS}
BUCKET_RETENTION_MS = {"hour": HOUR_MS + ROLLUP_RETENTION_DAYS * DAY_MS,
                       "5min": FIVE_MINUTES_MS + RAW_RETENTION_MS,
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


def _event_key(event: dict) -> tuple[str, str, str]:
    return event["site_id"], event["session_id"], event["event_id"]


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


def _gsi(name: str, hash_key: str, range_key: str, projection: str = "ALL", *included: str) -> dict:
    return {"IndexName": name,
            "KeySchema": [{"AttributeName": hash_key, "KeyType": "HASH"},
                          {"AttributeName": range_key, "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": projection,
                           **({"NonKeyAttributes": list(included)} if included else {})}}


def _attributes(**types: str) -> list[dict]:
    return [{"AttributeName": name, "AttributeType": kind} for name, kind in types.items()]


PK_SK = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]


@dataclass
class _State:
    """What one aggregation transaction reads first (strongly consistent)."""
    sessions: dict[str, Session] = field(default_factory=dict)
    visitors: dict[str, Visitor] = field(default_factory=dict)
    etags: dict[str, str] = field(default_factory=dict)  # pk -> etag of the version read
    applied: set[tuple[str, str]] = field(default_factory=set)  # marker keys already written


def _actions(events: list[dict], changes: Changes) -> int:
    """The size of a pack's transaction: a marker per event, the records, the counters."""
    return len(events) + len(changes.sessions) + len(changes.visitors) + len(changes.counters)


def _halves(events: list[dict]) -> tuple[list[dict], list[dict]]:
    """A pack too big for one transaction, in two: between sessions when it has several, so
    each session's counters are written once; else the one session's events in two."""
    sessions = [list(group) for _, group in itertools.groupby(events, key=itemgetter("session_id"))]
    if len(sessions) == 1:
        return events[:len(events) // 2], events[len(events) // 2:]
    middle = len(sessions) // 2
    return ([e for session in sessions[:middle] for e in session],
            [e for session in sessions[middle:] for e in session])


def _if_unchanged(etag: str | None) -> dict:
    """The condition that the item is still the version read (or still absent)."""
    if etag is None:
        return {"ConditionExpression": "attribute_not_exists(pk)"}
    return {"ConditionExpression": "etag = :etag", "ExpressionAttributeValues": {":etag": {"S": etag}}}


class DynamoDBStore(Store):
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
        self._sleep = time.sleep

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
        """Run independent requests in parallel: a request costs a network round trip."""
        items = list(items)
        if len(items) < 2:
            return [function(item) for item in items]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.shards, thread_name_prefix="dynamodb")
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

    # -- schema (local, dev and tests; on AWS template.yaml creates the same tables)
    def _table_specs(self) -> list[dict]:
        on_demand = {"BillingMode": "PAY_PER_REQUEST"}
        return [
            {"TableName": self.sites_table, **on_demand,
             "KeySchema": [{"AttributeName": "site_id", "KeyType": "HASH"}],
             "AttributeDefinitions": _attributes(site_id="S", tracker_key="S", kind="S", created_ms="N"),
             "GlobalSecondaryIndexes": [
                 {"IndexName": "by_key", "Projection": {"ProjectionType": "ALL"},
                  "KeySchema": [{"AttributeName": "tracker_key", "KeyType": "HASH"}]},
                 _gsi("by_created", "kind", "created_ms")]},
            {"TableName": self.events_table, **on_demand, "KeySchema": PK_SK,
             "AttributeDefinitions": _attributes(pk="S", sk="S", feed="S", time_key="S"),
             "GlobalSecondaryIndexes": [_gsi("by_time", "feed", "time_key")],
             "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}},
            {"TableName": self.aggregates_table, **on_demand, "KeySchema": PK_SK,
             "AttributeDefinitions": _attributes(pk="S", sk="S", live_pk="S", last_seen_ms="N",
                                                 xpk="S", expires_at="N", visitor_key="S", started_ms="N"),
             "GlobalSecondaryIndexes": [_gsi("live", "live_pk", "last_seen_ms", "INCLUDE", *LIVE_FIELDS),
                                        _gsi("expiry", "xpk", "expires_at", "KEYS_ONLY"),
                                        _gsi("by_visitor", "visitor_key", "started_ms", "KEYS_ONLY")]},
            # Users, memberships and public links; `inverted` reads each relation from its other end.
            {"TableName": self.accounts_table, **on_demand, "KeySchema": PK_SK,
             "AttributeDefinitions": _attributes(pk="S", sk="S"),
             "GlobalSecondaryIndexes": [_gsi("inverted", "sk", "pk")]},
        ]

    def create_schema(self) -> None:
        """Create the tables that are missing and make sure TTL is on; safe to repeat."""
        with self._errors():
            for spec in self._table_specs():
                name = spec["TableName"]
                try:
                    self.client.describe_table(TableName=name)
                except ClientError as exc:
                    if _code(exc) != "ResourceNotFoundException":
                        raise
                    self.client.create_table(**spec)
                    self.client.get_waiter("table_exists").wait(
                        TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
                if name not in (self.sites_table, self.accounts_table):
                    self._enable_ttl(name)

    def _enable_ttl(self, table: str) -> None:
        status = self.client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        if status["TimeToLiveStatus"] in ("DISABLED", "DISABLING"):
            self.client.update_time_to_live(TableName=table, TimeToLiveSpecification={
                "Enabled": True, "AttributeName": "expires_at"})

    def transaction(self):
        """A no-op: DynamoDB has no multi-request transaction to wrap ingestion in. Appends are
        idempotent instead, and the stream function aggregates each event exactly once."""
        return nullcontext()

    # -- sites
    def create_site(self, site: Site) -> None:
        with self._errors():
            try:
                self.client.put_item(TableName=self.sites_table, Item=to_item({**asdict(site), "kind": "site"}),
                                     ConditionExpression="attribute_not_exists(site_id)")
            except ClientError as exc:
                if _code(exc) == "ConditionalCheckFailedException":
                    raise StoreError(f"site {site.site_id!r} exists already") from exc
                raise

    @staticmethod
    def _site(item: dict) -> Site:
        data = from_item(item)
        return Site(**{name: data[name] for name in SITE_FIELDS if name in data})

    def get_site(self, site_id: str) -> Site | None:
        with self._errors():
            item = self.client.get_item(TableName=self.sites_table, Key={"site_id": {"S": site_id}}).get("Item")
        return self._site(item) if item else None

    def get_site_by_key(self, tracker_key: str) -> Site | None:
        with self._errors():
            items = self.client.query(
                TableName=self.sites_table, IndexName="by_key", KeyConditionExpression="tracker_key = :k",
                ExpressionAttributeValues={":k": {"S": tracker_key}})["Items"]
        return self._site(items[0]) if items else None

    def list_sites(self) -> list[Site]:
        with self._errors():
            items = self._query(TableName=self.sites_table, IndexName="by_created",
                                KeyConditionExpression="kind = :site",
                                ExpressionAttributeValues={":site": {"S": "site"}})
        return [self._site(item) for item in items]

    def update_site(self, site: Site) -> None:
        names = {f"#{i}": field_name for i, field_name in enumerate(Site.EDITABLE)}
        values = to_item({f":{i}": getattr(site, field_name) for i, field_name in enumerate(Site.EDITABLE)})
        with self._errors():
            self.client.update_item(TableName=self.sites_table, Key={"site_id": {"S": site.site_id}},
                                    ConditionExpression="attribute_exists(site_id)",
                                    UpdateExpression="SET " + ", ".join(f"#{i} = :{i}" for i in range(len(names))),
                                    ExpressionAttributeNames=names, ExpressionAttributeValues=values)

    def set_rolled_up_month(self, site_id: str, month: int) -> None:
        with self._errors():
            self.client.update_item(TableName=self.sites_table, Key={"site_id": {"S": site_id}},
                                    ConditionExpression="attribute_exists(site_id)",
                                    UpdateExpression="SET rolled_up_month = :m",
                                    ExpressionAttributeValues={":m": {"N": str(month)}})

    def delete_site(self, site_id: str) -> None:
        with self._errors():
            for shard in range(self.shards):  # its traffic: everything, as if all had expired
                self._purge_shard(site_id, shard, FAR_FUTURE_MS)
            self.client.delete_item(TableName=self.aggregates_table,
                                    Key={"pk": {"S": REGISTRY_PK}, "sk": {"S": site_id}})
            self._registered.discard(site_id)
            self._delete(self.accounts_table, self._query(
                TableName=self.accounts_table, ProjectionExpression="pk, sk",
                KeyConditionExpression="pk = :site", ExpressionAttributeValues={":site": {"S": f"SITE#{site_id}"}}))
            self.client.delete_item(TableName=self.sites_table, Key={"site_id": {"S": site_id}})

    # -- accounts: USER#id/USER, EMAIL#email/EMAIL (keeps emails unique),
    #    SITE#site/MEMBER#user and SITE#site/LINK#hash
    def _account_get(self, pk: str, sk: str) -> dict | None:
        with self._errors():
            item = self.client.get_item(TableName=self.accounts_table, ConsistentRead=True,
                                        Key={"pk": {"S": pk}, "sk": {"S": sk}}).get("Item")
        return from_item(item) if item else None

    def _account_query(self, key: str, value: str, prefix: str = "") -> list[dict]:
        """Items whose `key` ("pk", or "sk" through the inverted index) is value, the other
        key starting with prefix."""
        other = "sk" if key == "pk" else "pk"
        index = {"IndexName": "inverted"} if key == "sk" else {}
        condition, values = f"{key} = :v", {":v": {"S": value}}
        if prefix:
            condition, values[":p"] = condition + f" AND begins_with({other}, :p)", {"S": prefix}
        with self._errors():
            items = self._query(TableName=self.accounts_table, **index,
                                KeyConditionExpression=condition, ExpressionAttributeValues=values)
        return [from_item(item) for item in items]

    @staticmethod
    def _user_item(user: User) -> dict:
        return to_item({**asdict(user), "logins": json.dumps(user.logins), "pk": f"USER#{user.user_id}", "sk": "USER"})

    @staticmethod
    def _user(item: dict) -> User:
        user = User(**{name: item[name] for name in USER_FIELDS if name in item})
        user.logins = [Login(*login) for login in json.loads(item.get("logins") or "[]")]
        return user

    def create_user(self, user: User) -> None:
        record = self._user_item(user)
        email = to_item({"pk": f"EMAIL#{user.email}", "sk": "EMAIL", "user_id": user.user_id})
        new = "attribute_not_exists(pk)"
        with self._errors():
            try:
                self.client.transact_write_items(TransactItems=[
                    {"Put": {"TableName": self.accounts_table, "Item": email, "ConditionExpression": new}},
                    {"Put": {"TableName": self.accounts_table, "Item": record, "ConditionExpression": new}}])
            except ClientError as exc:
                if _code(exc) == "TransactionCanceledException":
                    raise Conflict(f"a user with the email {user.email!r} exists already") from exc
                raise

    def get_user(self, user_id: str) -> User | None:
        item = self._account_get(f"USER#{user_id}", "USER")
        return self._user(item) if item else None

    def get_user_by_email(self, email: str) -> User | None:
        item = self._account_get(f"EMAIL#{email}", "EMAIL")
        return self.get_user(item["user_id"]) if item else None

    def list_users(self) -> list[User]:
        users = [self._user(item) for item in self._account_query("sk", "USER")]
        return sorted(users, key=lambda u: u.email)

    def update_user(self, user: User) -> None:
        with self._errors():
            self.client.put_item(TableName=self.accounts_table, ConditionExpression="attribute_exists(pk)",
                                 Item=self._user_item(user))

    def delete_user(self, user_id: str) -> None:
        user = self.get_user(user_id)
        if user is None:
            return
        for membership in self.user_memberships(user_id):
            self.delete_membership(membership.site_id, user_id)
        with self._errors():
            self._delete(self.accounts_table, [{"pk": {"S": f"EMAIL#{user.email}"}, "sk": {"S": "EMAIL"}},
                                               {"pk": {"S": f"USER#{user_id}"}, "sk": {"S": "USER"}}])

    def put_membership(self, membership: Membership) -> None:
        with self._errors():
            self.client.put_item(TableName=self.accounts_table, Item=to_item({
                **asdict(membership), "pk": f"SITE#{membership.site_id}", "sk": f"MEMBER#{membership.user_id}"}))

    def delete_membership(self, site_id: str, user_id: str) -> None:
        with self._errors():
            self.client.delete_item(TableName=self.accounts_table,
                                    Key={"pk": {"S": f"SITE#{site_id}"}, "sk": {"S": f"MEMBER#{user_id}"}})

    @staticmethod
    def _membership(item: dict) -> Membership:
        return Membership(**{name: item[name] for name in MEMBERSHIP_FIELDS})

    def get_membership(self, site_id: str, user_id: str) -> Membership | None:
        item = self._account_get(f"SITE#{site_id}", f"MEMBER#{user_id}")
        return self._membership(item) if item else None

    def site_members(self, site_id: str) -> list[Membership]:
        members = [self._membership(i) for i in self._account_query("pk", f"SITE#{site_id}", "MEMBER#")]
        return sorted(members, key=lambda m: (m.created_ms, m.user_id))

    def user_memberships(self, user_id: str) -> list[Membership]:
        members = [self._membership(i) for i in self._account_query("sk", f"MEMBER#{user_id}", "SITE#")]
        return sorted(members, key=lambda m: (m.created_ms, m.site_id))

    # SITE#site/INVITE#email (found by email through the inverted index)
    def put_invitation(self, invitation: Invitation) -> None:
        with self._errors():
            self.client.put_item(TableName=self.accounts_table, Item=to_item({
                **asdict(invitation), "pk": f"SITE#{invitation.site_id}", "sk": f"INVITE#{invitation.email}"}))

    @staticmethod
    def _invitation(item: dict) -> Invitation:
        return Invitation(**{name: item[name] for name in INVITATION_FIELDS})

    def get_invitation(self, site_id: str, email: str) -> Invitation | None:
        item = self._account_get(f"SITE#{site_id}", f"INVITE#{email}")
        return self._invitation(item) if item else None

    @staticmethod
    def _oldest_first(invitations: Iterable[Invitation]) -> list[Invitation]:
        return sorted(invitations, key=lambda i: (i.created_ms, i.site_id, i.email))

    def site_invitations(self, site_id: str) -> list[Invitation]:
        return self._oldest_first(map(self._invitation, self._account_query("pk", f"SITE#{site_id}", "INVITE#")))

    def email_invitations(self, email: str) -> list[Invitation]:
        return self._oldest_first(map(self._invitation, self._account_query("sk", f"INVITE#{email}", "SITE#")))

    def delete_invitation(self, site_id: str, email: str) -> None:
        with self._errors():
            self.client.delete_item(TableName=self.accounts_table,
                                    Key={"pk": {"S": f"SITE#{site_id}"}, "sk": {"S": f"INVITE#{email}"}})

    @staticmethod
    def _link(item: dict) -> PublicLink:
        return PublicLink(**{name: item.get(name) for name in LINK_FIELDS})

    def create_public_link(self, link: PublicLink) -> None:
        with self._errors():
            self.client.put_item(TableName=self.accounts_table, Item=to_item({
                **asdict(link), "pk": f"SITE#{link.site_id}", "sk": f"LINK#{link.token_hash}"}))

    def get_public_link(self, token_hash: str) -> PublicLink | None:
        items = self._account_query("sk", f"LINK#{token_hash}", "SITE#")
        return self._link(items[0]) if items else None

    def list_public_links(self, site_id: str) -> list[PublicLink]:
        links = [self._link(i) for i in self._account_query("pk", f"SITE#{site_id}", "LINK#")]
        return sorted(links, key=lambda link: link.created_ms)

    def revoke_public_link(self, token_hash: str, revoked_ms: int) -> None:
        link = self.get_public_link(token_hash)
        if link is None or link.revoked_ms is not None:
            return
        with self._errors():
            self.client.update_item(
                TableName=self.accounts_table,
                Key={"pk": {"S": f"SITE#{link.site_id}"}, "sk": {"S": f"LINK#{token_hash}"}},
                UpdateExpression="SET revoked_ms = :t", ExpressionAttributeValues={":t": {"N": str(revoked_ms)}})

    # SITE#site/APIKEY#hash (found by hash through the inverted index), SITE#site/AUDIT#ts#id
    def create_api_key(self, key: ApiKey) -> None:
        with self._errors():
            self.client.put_item(TableName=self.accounts_table, Item=to_item({
                **asdict(key), "pk": f"SITE#{key.site_id}", "sk": f"APIKEY#{key.key_hash}"}))

    @staticmethod
    def _api_key(item: dict) -> ApiKey:
        return ApiKey(**{name: item.get(name) for name in API_KEY_FIELDS})

    def get_api_key(self, key_hash: str) -> ApiKey | None:
        items = self._account_query("sk", f"APIKEY#{key_hash}", "SITE#")
        return self._api_key(items[0]) if items else None

    def list_api_keys(self, site_id: str) -> list[ApiKey]:
        keys = [self._api_key(i) for i in self._account_query("pk", f"SITE#{site_id}", "APIKEY#")]
        return sorted(keys, key=lambda k: (k.created_ms, k.key_hash))

    def update_api_key(self, key: ApiKey) -> None:
        changes = {"last_used_ms": key.last_used_ms, "expires_ms": key.expires_ms, "revoked_ms": key.revoked_ms}
        with self._errors():
            self.client.update_item(
                TableName=self.accounts_table, ConditionExpression="attribute_exists(pk)",
                Key={"pk": {"S": f"SITE#{key.site_id}"}, "sk": {"S": f"APIKEY#{key.key_hash}"}},
                UpdateExpression="SET " + ", ".join(f"{name} = :{name}" for name in changes),
                ExpressionAttributeValues=to_item({f":{name}": value for name, value in changes.items()}))

    def add_audit(self, entry: AuditEntry) -> None:
        with self._errors():
            self.client.put_item(TableName=self.accounts_table, Item=to_item({
                **asdict(entry), "pk": f"SITE#{entry.site_id}", "sk": f"AUDIT#{entry.ts_ms:015d}#{entry.entry_id}"}))

    def list_audit(self, site_id: str, limit: int = 100) -> list[AuditEntry]:
        with self._errors():
            items = self._query(TableName=self.accounts_table, ScanIndexForward=False, Limit=limit,
                                KeyConditionExpression="pk = :site AND begins_with(sk, :audit)",
                                ExpressionAttributeValues={":site": {"S": f"SITE#{site_id}"},
                                                           ":audit": {"S": "AUDIT#"}})
        return [AuditEntry(**{name: data[name] for name in AUDIT_FIELDS}) for data in map(from_item, items)]

    # -- ingestion
    def _event_item(self, event: dict) -> dict:
        record = {name: event.get(name) for name in EVENT_FIELDS}
        record["props"] = json.dumps(event.get("props") or {})
        site, session = event["site_id"], event["session_id"]
        return to_item({
            **record,
            "pk": f"{site}#{session}", "sk": event["event_id"],
            "feed": f"{site}#{self._shard(session)}",
            # Newest first by arrival, then by event time: the same order as SQLite's feed.
            "time_key": f"{event['received_ms']:015d}#{event['ts']:015d}",
            "expires_at": _expires_s(event["received_ms"], RAW_RETENTION_MS),
        })

    def _put_new(self, item: dict) -> bool:
        """Put unless the key exists: a duplicate writes nothing, so it makes no stream record."""
        return self._put_if({"TableName": self.events_table, "Item": item, **_if_unchanged(None)})

    def append_events(self, events: list[dict]) -> list[dict]:
        first_of_each: dict[tuple[str, str], dict] = {}
        for event in events:
            first_of_each.setdefault((event["site_id"], event["event_id"]), event)
        unique = list(first_of_each.values())
        with self._errors():
            self._register_sites(e["site_id"] for e in unique)
            stored = self._map(self._put_new, [self._event_item(e) for e in unique])
        return [event for event, new in zip(unique, stored) if new]

    def _register_sites(self, site_ids: Iterable[str]) -> None:
        """Remember which sites have data (once per process), so purge can find them without a Scan."""
        for site_id in set(site_ids) - self._registered:
            self.client.put_item(TableName=self.aggregates_table,
                                 Item={"pk": {"S": REGISTRY_PK}, "sk": {"S": site_id}})
            self._registered.add(site_id)

    # -- the aggregates table: sessions, visitors, counters, sketches
    @staticmethod
    def _session_pk(site_id: str, session_id: str) -> str:
        return f"S#{site_id}#{session_id}"  # the session and its applied-event markers

    @staticmethod
    def _visitor_pk(site_id: str, user_id: str) -> str:
        return f"V#{site_id}#{user_id}"

    @staticmethod
    def _counter_pk(site_id: str, grain: str, metric: str, dimension: str, shard: int) -> str:
        return f"C#{site_id}#{grain}#{metric}#{dimension}#{shard}"

    @staticmethod
    def _sketch_pk(site_id: str, dimension: str, shard: int, grain: str = "day") -> str:
        # Day sketches keep the key they always had; dimensions never contain "#".
        return f"U#{site_id}#{dimension}#{shard}" if grain == "day" else f"U#{site_id}#{grain}#{dimension}#{shard}"

    def _session_item(self, session: Session) -> dict:
        return to_item({**asdict(session), "pk": self._session_pk(session.site_id, session.session_id),
                        "sk": "session", "live_pk": f"{session.site_id}#{self._shard(session.session_id)}",
                        "visitor_key": f"{session.site_id}#{session.user_id}",  # a visitor's visits
                        "etag": secrets.token_hex(8),
                        "expires_at": _expires_s(session.last_seen_ms, RAW_RETENTION_MS)})

    def _visitor_item(self, visitor: Visitor) -> dict:
        return to_item({**asdict(visitor), "pk": self._visitor_pk(visitor.site_id, visitor.user_id),
                        "sk": "visitor", "xpk": f"{visitor.site_id}#{self._shard(visitor.user_id)}",
                        "etag": secrets.token_hex(8),
                        "expires_at": _expires_s(visitor.last_seen_ms, RAW_RETENTION_MS)})

    def _record_items(self, changes: Changes) -> list[dict]:
        """The items of the sessions and visitors a change upserts."""
        return ([self._session_item(s) for s in changes.sessions]
                + [self._visitor_item(v) for v in changes.visitors])

    def _marker_item(self, event: dict, error: str | None = None) -> dict:
        """An event is applied (or, with its error, set aside): a redelivery skips it."""
        item = {**self._key(*self._marker_key(event)),
                "expires_at": {"N": str(_expires_s(event["received_ms"], RAW_RETENTION_MS))}}
        if error:
            item["set_aside"] = {"S": error[:1000]}
        return item

    def _counter_update(self, key: CounterKey, n: float, shard: int) -> dict:
        """UpdateItem parameters that atomically ADD n to one shard of a counter."""
        return {"TableName": self.aggregates_table,
                "Key": self._key(self._counter_pk(key.site_id, key.grain, key.metric, key.dimension, shard),
                                 _bucket_sort_key(key.hour, key.value)),
                "UpdateExpression": "ADD n :n SET #value = :value, xpk = :xpk, expires_at = :exp",
                "ExpressionAttributeNames": {"#value": "value"},
                "ExpressionAttributeValues": to_item({
                    ":n": n, ":value": key.value, ":xpk": f"{key.site_id}#{shard}",
                    ":exp": _bucket_expires_s(key.grain, key.hour)})}

    def _sketch_key(self, key: UniqueKey, shard: int) -> dict:
        return self._key(self._sketch_pk(key.site_id, key.dimension, shard, key.grain),
                         _bucket_sort_key(key.day, key.value))

    def _sketch_puts(self, uniques: dict[UniqueKey, set[str]], shard: int) -> list[tuple[UniqueKey, dict]]:
        """Puts that add visitor ids to one shard of each sketch, each conditional on the
        version read; none where the sketch does not change (a visitor seen already)."""
        from . import hll  # the sketch library takes ~0.05 s to load: only where sketches are used
        keys = {key: self._sketch_key(key, shard) for key in uniques}
        stored = {(i["pk"]["S"], i["sk"]["S"]): i
                  for i in self._batch_get(self.aggregates_table, list(keys.values()), consistent=True)}
        puts = []
        for key, user_ids in uniques.items():
            item = stored.get((keys[key]["pk"]["S"], keys[key]["sk"]["S"]))
            old = item["sketch"]["B"] if item else None
            new = hll.add_visitors(old, user_ids)
            if new != old:
                new_item = {**keys[key], **to_item({
                    "value": key.value, "sketch": new, "etag": secrets.token_hex(8),
                    "xpk": f"{key.site_id}#{shard}", "expires_at": _bucket_expires_s(key.grain, key.day)})}
                puts.append((key, {"TableName": self.aggregates_table, "Item": new_item,
                                   **_if_unchanged(item["etag"]["S"] if item else None)}))
        return puts

    def _add_uniques(self, uniques: dict[UniqueKey, set[str]], shard: int) -> None:
        """Read, add, write back each sketch; again for those a concurrent writer changed."""
        for attempt in range(ATTEMPTS):
            if attempt:
                self._backoff(attempt - 1)
            puts = self._sketch_puts(uniques, shard)
            conflicts = [key for (key, _), done in zip(puts, self._map(self._put_if, [p for _, p in puts]))
                         if not done]
            if not conflicts:
                return
            uniques = {key: uniques[key] for key in conflicts}
        raise StoreError(f"dynamodb: {len(uniques)} sketches still conflicting after {ATTEMPTS} attempts")

    def _put_if(self, put: dict) -> bool:
        try:
            self.client.put_item(**put)
            return True
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise

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

    @staticmethod
    def _key(pk: str, sk: str) -> dict:
        return {"pk": {"S": pk}, "sk": {"S": sk}}

    def get_sessions(self, site_id: str, session_ids: Iterable[str]) -> dict[str, Session]:
        keys = [self._key(self._session_pk(site_id, s), "session") for s in dict.fromkeys(session_ids)]
        with self._errors():
            items = self._batch_get(self.aggregates_table, keys)
        return {s.session_id: s for s in map(self._session, items)}

    def get_visitors(self, site_id: str, user_ids: Iterable[str]) -> dict[str, Visitor]:
        keys = [self._key(self._visitor_pk(site_id, u), "visitor") for u in dict.fromkeys(user_ids)]
        with self._errors():
            items = self._batch_get(self.aggregates_table, keys)
        return {v.user_id: v for v in map(self._visitor, items)}

    @staticmethod
    def _session(item: dict) -> Session:
        data = from_item(item)
        return Session(**{name: data[name] for name in SESSION_FIELDS})

    @staticmethod
    def _visitor(item: dict) -> Visitor:
        data = from_item(item)
        return Visitor(**{name: data[name] for name in VISITOR_FIELDS})

    def apply(self, changes: Changes) -> None:
        """Upsert sessions and visitors, ADD counter deltas, add to sketches. Not exactly-once:
        ingestion uses it only to count dropped events; the stream function uses `fold`."""
        puts = self._record_items(changes)
        # Any shard will do: reads merge them, and a bot flood spreads over all of them.
        shard = random.randrange(self.shards)
        with self._errors():
            self._register_sites({s.site_id for s in changes.sessions} | {v.site_id for v in changes.visitors}
                                 | {k.site_id for k in changes.counters} | {k.site_id for k in changes.uniques})
            self._batch_write(self.aggregates_table, [{"PutRequest": {"Item": item}} for item in puts])
            self._map(lambda kv: self.client.update_item(**self._counter_update(*kv, shard)),
                      changes.counters.items())
            if changes.uniques:
                self._add_uniques(changes.uniques, shard)

    def put_rollups(self, counters: dict[CounterKey, float], sketches: dict[UniqueKey, bytes]) -> None:
        """Plain puts on shard 0: rollups have one writer (the schedule), and reads merge
        shards whatever they hold."""
        items = [{**self._key(self._counter_pk(k.site_id, k.grain, k.metric, k.dimension, 0),
                              _bucket_sort_key(k.hour, k.value)),
                  **to_item({"n": n, "value": k.value, "xpk": f"{k.site_id}#0",
                             "expires_at": _bucket_expires_s(k.grain, k.hour)})}
                 for k, n in counters.items()]
        items += [{**self._sketch_key(k, 0),
                   **to_item({"value": k.value, "sketch": sketch, "etag": secrets.token_hex(8),
                              "xpk": f"{k.site_id}#0", "expires_at": _bucket_expires_s(k.grain, k.day)})}
                  for k, sketch in sketches.items()]
        with self._errors():
            self._register_sites({k.site_id for k in counters} | {k.site_id for k in sketches})
            self._batch_write(self.aggregates_table, [{"PutRequest": {"Item": item}} for item in items])

    # -- the event log: read by Lambda from the events table's stream, folded here exactly once
    reads_own_log = False  # Lambda's event source mapping reads the stream and keeps the checkpoint

    def read_log(self, limit: int) -> list[LogEntry]:
        raise StoreError("on DynamoDB the events stream is read by Lambda (the stream function), not the app")

    def lead(self, wait: bool = True) -> bool:
        raise StoreError("on DynamoDB Lambda reads the events stream: one invocation per shard at a time")

    def fold(self, entries: list[LogEntry], fold: Fold) -> FoldResult:
        """Fold stream records' events so that each counts once, however often Lambda delivers
        it. Events go in packs of one site, each pack in one transaction with a marker per event
        (an event that could not be folded gets one too, with its error: set aside, never
        retried); redelivered events find their marker and are skipped. Sketches need no such
        care: they are unions, so adding a visitor again changes nothing.

        Stops at the first pack that fails to write and returns the entries not applied (that
        pack and the rest), so Lambda can deliver them again, in order.
        """
        by_key = {_event_key(entry.event): entry for entry in entries}
        packs = self._packs([entry.event for entry in entries])
        result = FoldResult()
        for index, pack in enumerate(packs):
            try:
                with self._errors():
                    folded, failed = self._fold_pack(pack, fold)
            except StoreError:
                log.exception("aggregation failed on a pack of %d events; they will be retried", len(pack))
                result.unapplied = [by_key[_event_key(e)] for rest in packs[index:] for e in rest]
                return result
            result.folded += folded
            result.set_aside += [by_key[_event_key(e)] for e, _ in failed]
        return result

    @staticmethod
    def _packs(events: list[dict]) -> list[list[dict]]:
        unique = {_event_key(e): e for e in events}
        ordered = sorted(unique.values(), key=itemgetter("site_id", "session_id", "ts", "event_id"))
        packs = []
        for _, site_events in itertools.groupby(ordered, key=itemgetter("site_id")):
            packs += _chunks(list(site_events), PACK_EVENTS)
        return packs

    def _fold_pack(self, events: list[dict], fold: Fold) -> tuple[int, list[tuple[dict, str]]]:
        """Fold one pack; returns how many events were applied now and those set aside."""
        for attempt in range(ATTEMPTS):
            state = self._read_state(events)
            fresh = [e for e in events if self._marker_key(e) not in state.applied]
            if not fresh:
                return 0, []
            outcome = fold(fresh[0]["site_id"], fresh, state.sessions, state.visitors)
            if _actions(fresh, outcome.changes) > MAX_TRANSACTION_ACTIONS and len(fresh) > 1:
                halves = [self._fold_pack(half, fold) for half in _halves(fresh)]
                return sum(n for n, _ in halves), [f for _, failed in halves for f in failed]
            shard = self._shard(fresh[0]["session_id"])
            # Sketches first, outside the transaction: adding a visitor to a sketch twice changes
            # nothing, so if the transaction fails, its retry cannot count anyone twice.
            self._add_uniques(outcome.changes.uniques, shard)
            errors = {e["event_id"]: error for e, error in outcome.failed}
            if self._transact(self._transaction(fresh, outcome.changes, state.etags, shard, errors)):
                return len(fresh) - len(errors), outcome.failed
            self._backoff(attempt)  # a concurrent writer won (e.g. the same visitor in two tabs)
        raise StoreError(f"dynamodb: aggregation transaction still conflicting after {ATTEMPTS} attempts")

    def _marker_key(self, event: dict) -> tuple[str, str]:
        return self._session_pk(event["site_id"], event["session_id"]), f"event#{event['event_id']}"

    def _read_state(self, events: list[dict]) -> _State:
        site_id = events[0]["site_id"]
        sessions = dict.fromkeys(e["session_id"] for e in events)
        users = dict.fromkeys(e["user_id"] for e in events)
        keys = ([(self._session_pk(site_id, s), "session") for s in sessions]
                + [(self._visitor_pk(site_id, u), "visitor") for u in users]
                + [self._marker_key(e) for e in events])
        state = _State()
        for item in self._batch_get(self.aggregates_table, [self._key(*k) for k in keys], consistent=True):
            pk, sk = item["pk"]["S"], item["sk"]["S"]
            if sk == "session":
                session = self._session(item)
                state.sessions[session.session_id] = session
            elif sk == "visitor":
                visitor = self._visitor(item)
                state.visitors[visitor.user_id] = visitor
            else:
                state.applied.add((pk, sk))
            if "etag" in item:
                state.etags[pk] = item["etag"]["S"]
        return state

    def _transaction(self, events: list[dict], changes: Changes, etags: dict[str, str],
                     shard: int, errors: dict[str, str]) -> list[dict]:
        """Markers, sessions, visitors and counter deltas as one all-or-nothing write. Each
        session and visitor put requires the version read (optimistic concurrency)."""
        table = self.aggregates_table
        actions = [{"Put": {"TableName": table, "Item": self._marker_item(e, errors.get(e["event_id"])),
                            **_if_unchanged(None)}}
                   for e in events]
        actions += [{"Put": {"TableName": table, "Item": item, **_if_unchanged(etags.get(item["pk"]["S"]))}}
                    for item in self._record_items(changes)]
        actions += [{"Update": self._counter_update(key, n, shard)} for key, n in changes.counters.items()]
        return actions

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

    # -- reads
    def _query(self, **params) -> list[dict]:
        """Every item of a Query, following pages (or the first page when a Limit is given)."""
        items: list[dict] = []
        while True:
            page = self.client.query(**params)
            items += page["Items"]
            if "Limit" in params or "LastEvaluatedKey" not in page:
                return items
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def live_sessions(self, site_id: str, since_ms: int) -> list[LiveSession]:
        def shard_sessions(shard: int) -> list[dict]:
            return self._query(
                TableName=self.aggregates_table, IndexName="live",
                KeyConditionExpression="live_pk = :p AND last_seen_ms >= :since",
                ExpressionAttributeValues={":p": {"S": f"{site_id}#{shard}"}, ":since": {"N": str(since_ms)}})
        with self._errors():
            items = self._fan_out(shard_sessions)
        return [LiveSession(data["user_id"], data["last_seen_ms"], data["exit_path"], data["source"])
                for data in map(from_item, items)]

    def recent_events(self, site_id: str, limit: int) -> list[dict]:
        def newest(shard: int) -> list[dict]:
            return self._query(
                TableName=self.events_table, IndexName="by_time", KeyConditionExpression="feed = :f",
                ExpressionAttributeValues={":f": {"S": f"{site_id}#{shard}"}},
                ScanIndexForward=False, Limit=limit)
        with self._errors():
            items = self._fan_out(newest)
        items.sort(key=lambda item: item["time_key"]["S"], reverse=True)
        return [event_from_item(item) for item in items[:limit]]

    def _buckets(self, pk_of_shard: Callable[[int], str], start: int, end: int, grain: str) -> list[dict]:
        """Items of every shard with start <= bucket < end (sort keys begin with the bucket).
        Month rollups have one writer, which puts them on shard 0: only that one is read."""
        def shard_items(shard: int) -> list[dict]:
            return self._query(
                TableName=self.aggregates_table,
                KeyConditionExpression="pk = :pk AND sk BETWEEN :start AND :end",
                ExpressionAttributeValues={":pk": {"S": pk_of_shard(shard)}, ":start": {"S": f"{start:010d}"},
                                           ":end": {"S": f"{end:010d}"}})
        if start >= end:
            return []
        with self._errors():
            return self._fan_out(shard_items, 1 if grain == "month" else None)

    @staticmethod
    def _bucket_of(item: dict) -> int:
        return int(item["sk"]["S"][:10])

    def read_counters(self, site_id: str, metric: str, dimension: str,
                      start_hour: int, end_hour: int, grain: str = "hour") -> list[CounterRow]:
        items = self._buckets(lambda shard: self._counter_pk(site_id, grain, metric, dimension, shard),
                              start_hour, end_hour, grain)
        totals: dict[tuple[int, str], float] = defaultdict(float)
        for item in items:
            totals[self._bucket_of(item), item["value"]["S"]] += float(item["n"]["N"])
        return [CounterRow(bucket, value, n) for (bucket, value), n in totals.items()]

    def sum_counters(self, site_id: str, metric: str, dimension: str,
                     start: int, end: int, grain: str = "day") -> dict[str, float]:
        totals: dict[str, float] = defaultdict(float)
        for row in self.read_counters(site_id, metric, dimension, start, end, grain):
            totals[row.value] += row.n
        return dict(totals)

    def read_sketches(self, site_id: str, dimension: str, start_day: int, end_day: int,
                      values: Iterable[str] | None = None, grain: str = "day") -> list[SketchRow]:
        from . import hll
        wanted = None if values is None else set(values)
        items = self._buckets(lambda shard: self._sketch_pk(site_id, dimension, shard, grain),
                              start_day, end_day, grain)
        shards: dict[tuple[int, str], list[bytes]] = defaultdict(list)
        for item in items:
            value = item["value"]["S"]
            if wanted is None or value in wanted:
                shards[self._bucket_of(item), value].append(item["sketch"]["B"])
        # One row per day and value, as SQLite has: the union of its shards' sketches.
        return [SketchRow(day, value, blobs[0] if len(blobs) == 1 else hll.merge(blobs))
                for (day, value), blobs in shards.items()]

    # -- privacy: a visitor's visits through `by_visitor`, each visit's events by partition
    def _visitor_sessions(self, site_id: str, user_id: str) -> list[Session]:
        keys = [{"pk": item["pk"], "sk": item["sk"]} for item in self._query(
            TableName=self.aggregates_table, IndexName="by_visitor",
            KeyConditionExpression="visitor_key = :v",
            ExpressionAttributeValues={":v": {"S": f"{site_id}#{user_id}"}})]
        sessions = [self._session(item) for item in self._batch_get(self.aggregates_table, keys)]
        return sorted(sessions, key=lambda s: s.started_ms)

    def _session_events(self, site_id: str, session_id: str) -> list[dict]:
        return self._query(TableName=self.events_table, KeyConditionExpression="pk = :pk",
                           ExpressionAttributeValues={":pk": {"S": f"{site_id}#{session_id}"}})

    def visitor_data(self, site_id: str, user_id: str) -> VisitorData:
        with self._errors():
            sessions = self._visitor_sessions(site_id, user_id)
            items = [item for s in sessions for item in self._session_events(site_id, s.session_id)]
        events = [event_from_item(item) for item in items]
        events = sorted((e for e in events if e["user_id"] == user_id), key=itemgetter("ts", "event_id"))
        return VisitorData(events, sessions, self.get_visitors(site_id, [user_id]).get(user_id))

    def erase_visitor(self, site_id: str, user_id: str) -> dict[str, int]:
        """The visitor's visits (with their applied-event markers), their events and the
        visitor record. Events not aggregated yet (the stream lags by seconds) have no visit
        to be found by: erasing again a minute later takes them too."""
        with self._errors():
            sessions = self._visitor_sessions(site_id, user_id)
            events = [item for s in sessions for item in self._session_events(site_id, s.session_id)]
            visits = [item for s in sessions for item in self._query(
                TableName=self.aggregates_table, ProjectionExpression="pk, sk", KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": self._session_pk(site_id, s.session_id)}})]
            visitor = self.get_visitors(site_id, [user_id])
            self._delete(self.events_table, events)
            self._delete(self.aggregates_table, visits + [
                self._key(self._visitor_pk(site_id, user_id), "visitor") for _ in visitor])
        return {"events": len(events), "sessions": len(sessions), "visitors": len(visitor)}

    # -- retention
    def purge(self, now_ms: int) -> dict[str, int]:
        """Delete what TTL would have deleted by now, found through the time-ordered indexes."""
        deleted: Counter[str] = Counter(events=0, sessions=0, visitors=0, counters=0, sketches=0)
        with self._errors():
            site_ids = [item["sk"]["S"] for item in self._query(
                TableName=self.aggregates_table, KeyConditionExpression="pk = :r",
                ExpressionAttributeValues={":r": {"S": REGISTRY_PK}})]
            for site_id in site_ids:
                per_shard = self._map(lambda shard: self._purge_shard(site_id, shard, now_ms), range(self.shards))
                for counts in per_shard:
                    deleted.update(counts)
        return dict(deleted)

    def _purge_shard(self, site_id: str, shard: int, now_ms: int) -> Counter[str]:
        partition = {":p": {"S": f"{site_id}#{shard}"}}
        cutoff = now_ms - RAW_RETENTION_MS
        events = self._query(TableName=self.events_table, IndexName="by_time", ProjectionExpression="pk, sk",
                             KeyConditionExpression="feed = :p AND time_key < :cut",
                             ExpressionAttributeValues={**partition, ":cut": {"S": f"{cutoff:015d}"}})
        sessions = self._query(TableName=self.aggregates_table, IndexName="live", ProjectionExpression="pk",
                               KeyConditionExpression="live_pk = :p AND last_seen_ms < :cut",
                               ExpressionAttributeValues={**partition, ":cut": {"N": str(cutoff)}})
        # A session goes with its markers: they share its partition key.
        session_items = [item for session in sessions for item in self._query(
            TableName=self.aggregates_table, ProjectionExpression="pk, sk", KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": session["pk"]})]
        expired = self._query(TableName=self.aggregates_table, IndexName="expiry",
                              KeyConditionExpression="xpk = :p AND expires_at <= :now",
                              ExpressionAttributeValues={**partition, ":now": {"N": str(now_ms // 1000)}})
        self._delete(self.events_table, events)
        self._delete(self.aggregates_table, session_items + expired)
        kinds = Counter(EXPIRING_KINDS[item["pk"]["S"][:2]] for item in expired)
        return Counter(events=len(events), sessions=len(sessions)) + kinds

    def _delete(self, table: str, items: list[dict]) -> None:
        self._batch_write(table, [{"DeleteRequest": {"Key": {"pk": item["pk"], "sk": item["sk"]}}}
                                  for item in items])

    # -- operations
    def check(self) -> None:
        with self._errors():
            self.client.get_item(TableName=self.sites_table, Key={"site_id": {"S": "-"}})

    def backup(self, path: str) -> None:
        raise StoreError("DynamoDB keeps its own backups: point-in-time recovery is on for every table "
                         "(restore to any second of the last 35 days), and `aws dynamodb create-backup` "
                         "makes an on-demand one (docs/aws.md, Backups)")
