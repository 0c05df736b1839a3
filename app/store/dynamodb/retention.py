"""Retention and privacy: `purge` deletes raw data past retention through the time-ordered
indexes; a visitor's data is found, shown and erased through their visits.

Statistics (counters and sketches, kept 13 months; the live widgets' minute counters, a day)
are left to TTL alone: no `expiry` entry to write when an item is made, no delete and no entry
to remove when it expires. TTL deletes within days of `expires_at`, not at once, so reads skip
what the last purge would have deleted (`expires_at > horizon`, the purge's "now", kept in the
registry), as SQLite's reads miss what its purge deleted. A deleted site's statistics are found
through the list of their partitions, written once per process and key (`K#site#partitions`: an
item names every shard of a key).
"""
from __future__ import annotations

import time
from collections import Counter
from operator import itemgetter
from typing import Iterable

from botocore.exceptions import ClientError

from ..records import DAY_MS, RAW_RETENTION_MS, ROLLUP_RETENTION_DAYS, Session, VisitorData
from .client import FAR_FUTURE_MS, HORIZON_SK, REGISTRY_PK, _code, event_from_item

# What the expiry index holds, by the start of the partition key: statistics made before
# December 2026 are there too, until the purge deletes them.
EXPIRING_KINDS = {"S#": "sessions", "V#": "visitors", "K#": "counters", "C#": "counters", "U#": "sketches"}
HORIZON_READ_EVERY_S = 60  # how stale another process's purge horizon may be here
ALL_SHARDS = "#*"  # a partition list item's suffix: every shard of the key before it


class RetentionMixin:
    """A visitor's data, shown or erased, and the purge of what is past retention."""

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
            self._delete_each(self.events_table, events)
            self._delete_each(self.aggregates_table, visits + [
                self._key(self._visitor_pk(site_id, user_id), "visitor") for _ in visitor])
        return {"events": len(events), "sessions": len(sessions), "visitors": len(visitor)}

    # -- retention
    def purge(self, now_ms: int) -> dict[str, int]:
        """Delete what TTL would have deleted by now, found through the time-ordered indexes, and
        all the traffic of the sites deleted since the last purge (their registry items say so).
        Also moves counters an earlier release kept in another layout (upgrade.py)."""
        deleted: Counter[str] = Counter(events=0, sessions=0, visitors=0, counters=0, sketches=0, alerts=0)
        with self._errors():
            for item in self._registry_items():
                site_id, gone = item["sk"]["S"], "deleting" in item
                until = FAR_FUTURE_MS if gone else now_ms  # a deleted site's traffic: all, as if expired
                for counts in self._map(lambda shard: self._purge_shard(site_id, shard, until), range(self.shards)):
                    deleted.update(counts)
                if gone:
                    deleted.update(self._purge_statistics(site_id))
                    self.client.delete_item(TableName=self.aggregates_table, Key={"pk": item["pk"], "sk": item["sk"]})
                elif "packed" not in item:  # an upgrade's work (upgrade.py), until none is left
                    self.pack_counters(site_id)
            cutoff = now_ms - ROLLUP_RETENTION_DAYS * DAY_MS
            deleted["alerts"] = sum(self._map(lambda site: self._purge_alerts(site.site_id, cutoff), self.list_sites()))
            self._move_horizon(now_ms // 1000)
        return dict(deleted)

    def _registry_items(self) -> list[dict]:
        """The registry's item of each site with data (`deleting` once deleted), without the
        retention horizon's: what the purge and the counter journal's schedule walk."""
        registry = self._query(TableName=self.aggregates_table, KeyConditionExpression="pk = :r",
                               ExpressionAttributeValues={":r": {"S": REGISTRY_PK}})
        return [item for item in registry if item["sk"]["S"] != HORIZON_SK]

    # -- statistics: left to TTL, hidden past the horizon, listed for a site's deletion
    def _move_horizon(self, now_s: int) -> None:
        """From now on reads skip statistics expired by `now_s` (never moved back)."""
        try:
            self.client.update_item(TableName=self.aggregates_table, Key=self._key(REGISTRY_PK, HORIZON_SK),
                                    UpdateExpression="SET horizon_s = :now",
                                    ConditionExpression="attribute_not_exists(horizon_s) OR horizon_s < :now",
                                    ExpressionAttributeValues={":now": {"N": str(now_s)}})
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
            now_s = self._retention_horizon_s(fresh=True)  # a later purge's: keep it
        self._horizon = (time.monotonic(), now_s)

    def _retention_horizon_s(self, fresh: bool = False) -> int:
        """The last purge's "now" in epoch seconds (0 before any), read at most once a minute;
        with a Query, which every function that reads counters may make (template.yaml)."""
        if fresh or self._horizon is None or time.monotonic() - self._horizon[0] > HORIZON_READ_EVERY_S:
            found = self.client.query(TableName=self.aggregates_table, ConsistentRead=fresh,
                                      KeyConditionExpression="pk = :pk AND sk = :sk",
                                      ExpressionAttributeValues={":pk": {"S": REGISTRY_PK}, ":sk": {"S": HORIZON_SK}})
            horizon = found["Items"][0]["horizon_s"]["N"] if found["Items"] else "0"
            self._horizon = (time.monotonic(), int(horizon))
        return self._horizon[1]

    def _partitions_pk(self, site_id: str) -> str:
        return f"K#{site_id}#partitions"  # under K#: the web function may write it (template.yaml)

    def _list_partitions(self, partitions: Iterable[tuple[str, str]]) -> None:
        """Add (site, statistics partition key) pairs to their site's list, once per process:
        a put each of what this process has not listed yet (idempotent). Every such key ends
        with its shard: the list names its shards at once (`<key without shard>#*`), one item
        for all of them, not one a shard."""
        new = {(site_id, pk.rsplit("#", 1)[0] + ALL_SHARDS) for site_id, pk in partitions} - self._listed
        self._map(lambda listed: self.client.put_item(
            TableName=self.aggregates_table, Item=self._key(self._partitions_pk(listed[0]), listed[1])), new)
        self._listed |= new

    def _listed_partitions(self, listed: str) -> list[str]:
        """The partition keys a list item names: its shards', or one (listed before December 2026)."""
        if listed.endswith(ALL_SHARDS):
            return [f"{listed[:-len(ALL_SHARDS)]}#{shard}" for shard in range(self.shards)]
        return [listed]

    def _purge_statistics(self, site_id: str) -> Counter[str]:
        """A deleted site's counters, sketches and waiting journal items, partition by partition,
        then their list."""
        deleted: Counter[str] = Counter()
        listed = self._query(TableName=self.aggregates_table, ProjectionExpression="pk, sk",
                             KeyConditionExpression="pk = :pk",
                             ExpressionAttributeValues={":pk": {"S": self._partitions_pk(site_id)}})
        for partition in (pk for item in listed for pk in self._listed_partitions(item["sk"]["S"])):
            for page in self._query_pages(TableName=self.aggregates_table, ProjectionExpression="pk, sk",
                                          KeyConditionExpression="pk = :pk",
                                          ExpressionAttributeValues={":pk": {"S": partition}}):
                self._delete(self.aggregates_table, page)
                deleted[{"U#": "sketches", "J#": "journal"}.get(partition[:2], "counters")] += len(page)
        self._delete(self.aggregates_table, listed)
        self._listed = {listed for listed in self._listed if listed[0] != site_id}
        return deleted

    def _purge_alerts(self, site_id: str, cutoff_ms: int) -> int:
        """A site's alerts and reports that fired before the cutoff, and their keys' claims (a
        key names its period: an old one never comes due again)."""
        site = {":site": {"S": f"SITE#{site_id}"}}
        fired = self._query(TableName=self.accounts_table, ProjectionExpression="pk, sk",
                            KeyConditionExpression="pk = :site AND sk BETWEEN :first AND :last",
                            ExpressionAttributeValues={**site, ":first": {"S": "ALERT#"},
                                                       ":last": {"S": f"ALERT#{cutoff_ms:015d}"}})
        claims = self._query(TableName=self.accounts_table, ProjectionExpression="pk, sk",
                             KeyConditionExpression="pk = :site AND begins_with(sk, :fired)",
                             FilterExpression="fired_ms < :cutoff",
                             ExpressionAttributeValues={**site, ":fired": {"S": "FIRED#"},
                                                        ":cutoff": {"N": str(cutoff_ms)}})
        self._delete(self.accounts_table, fired + claims)
        return len(fired)

    def _purge_shard(self, site_id: str, shard: int, now_ms: int) -> Counter[str]:
        """A page of keys at a time (a page is up to 1 MB): a busy site's expired keys are never
        all in memory at once."""
        partition = {":p": {"S": f"{site_id}#{shard}"}}
        cutoff = now_ms - RAW_RETENTION_MS
        deleted: Counter[str] = Counter()
        for events in self._query_pages(
                TableName=self.events_table, IndexName="by_time", ProjectionExpression="pk, sk",
                KeyConditionExpression="feed = :p AND time_key < :cut",
                ExpressionAttributeValues={**partition, ":cut": {"S": f"{cutoff:015d}"}}):
            self._delete(self.events_table, events)
            deleted["events"] += len(events)
        # Sessions (by their last event's hour), visitors, counters and sketches. A visit's
        # applied-event markers are left to TTL (their expiry: the event's arrival + 24 h).
        # Sessions are swept by their events' time, the visitor's clock, and Lambda may still
        # deliver a skewed visit's stream records again, which must find their markers to be
        # skipped; and they hold nothing of the visitor but the visit's random id, so a delete
        # each (a write unit and a Query of the visit) would buy nothing.
        for expired in self._query_pages(
                TableName=self.aggregates_table, IndexName="expiry",
                KeyConditionExpression="xpk = :p AND expires_at <= :now",
                ExpressionAttributeValues={**partition, ":now": {"N": str(now_ms // 1000)}}):
            self._delete(self.aggregates_table, expired)
            deleted.update(EXPIRING_KINDS[item["pk"]["S"][:2]] for item in expired)
        return deleted
