"""Traffic: events appended to the events table; sessions, visitors, counters and sketches in
the aggregates table, written by `apply` and `put_rollups` (and `fold`) and read back."""
from __future__ import annotations

import json
import random
import secrets
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import asdict, fields
from typing import Callable, Iterable, Iterator

from ..records import (
    EVENT_FIELDS, RAW_RETENTION_MS, Changes, CounterKey, CounterRow, Session, SketchRow, StoreError,
    UniqueKey, Visitor,
)
from .client import (
    ATTEMPTS, REGISTRY_PK, _bucket_expires_s, _bucket_sort_key, _expires_s, _if_unchanged, event_from_item,
    from_item, to_item,
)

SESSION_FIELDS = tuple(f.name for f in fields(Session))
VISITOR_FIELDS = tuple(f.name for f in fields(Visitor))
# A counter item: (site, grain, dimension, bucket, value); its metrics are its attributes.
CounterItem = tuple[str, str, str, int, str]
# A quiet site's live visitors of a minute by page and by source ride in the minute's "live"
# item, an attribute a value ("live_page:/pricing"): a visitor moving on to a new minute is then
# two writes (the minute left, the minute entered), not six. Once a minute's item is past one
# write unit, this process writes an item a value for the rest of that minute, as a busy site's
# packs always do; reads add both up (docs/dynamodb.md, "<prefix>-aggregates").
IN_LIVE_ITEM = ("live_page", "live_source")
LIVE_ITEM_BYTES = 1024


def metric_attribute(metric: str) -> str:
    return f"n:{metric}"  # apart from the item's other attributes (value, xpk, expires_at)


def live_attribute(dimension: str, value: str) -> str:
    return f"{dimension}:{value}"  # a value's visitors in a minute's "live" item (IN_LIVE_ITEM)


def _item_bytes(item: dict) -> int:
    """About what DynamoDB bills an item's size by: its attributes' names and values."""
    return sum(len(name.encode()) + len(next(iter(value.values())).encode()) for name, value in item.items()
               if next(iter(value)) in ("S", "N"))


def counter_items(counters: dict[CounterKey, float]) -> dict[CounterItem, dict[str, float]]:
    """Counter deltas grouped by the item that holds them: metric -> n for each item."""
    items: dict[CounterItem, dict[str, float]] = defaultdict(dict)
    for key, n in counters.items():
        items[key.site_id, key.grain, key.dimension, key.hour, key.value][key.metric] = n
    return items


def _hourly_expires_s(last_seen_ms: int) -> int:
    """A visit's or visitor's TTL: the hour before last seen + 24 h, so that its `expiry` index
    entry moves (two index writes) once an hour, not at each of its batches. A record gone up
    to an hour early has served: a visit 30 minutes after its last event is over, and a
    visitor record counts visitors by day."""
    return _expires_s(last_seen_ms, RAW_RETENTION_MS) // 3600 * 3600


class TrafficMixin:
    """Events in, sessions, visitors, counters and sketches written and read back."""

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
            # An update, not a put: a put would wipe the `deleting` mark of a site deleted a
            # moment ago (another container may still take its events), and its traffic would stay.
            self.client.update_item(TableName=self.aggregates_table, Key=self._key(REGISTRY_PK, site_id),
                                    UpdateExpression="SET registered = :yes", ExpressionAttributeValues={":yes": {"BOOL": True}})
            self._registered.add(site_id)

    # -- the aggregates table: sessions, visitors, counters, sketches
    @staticmethod
    def _session_pk(site_id: str, session_id: str) -> str:
        return f"S#{site_id}#{session_id}"  # the session and its applied-event markers

    @staticmethod
    def _visitor_pk(site_id: str, user_id: str) -> str:
        return f"V#{site_id}#{user_id}"

    @staticmethod
    def _counter_pk(site_id: str, grain: str, dimension: str, shard: int) -> str:
        # One item holds every metric of a (dimension, bucket, value), an attribute each: a
        # visit's ~56 counter deltas are ~23 items to write (docs/dynamodb.md). "C#" items, a
        # metric each, are the layout before; the purge moves them (upgrade.py).
        return f"K#{site_id}#{grain}#{dimension}#{shard}"

    @staticmethod
    def _sketch_pk(site_id: str, dimension: str, shard: int, grain: str = "day") -> str:
        # Day sketches keep the key they always had; dimensions never contain "#".
        return f"U#{site_id}#{dimension}#{shard}" if grain == "day" else f"U#{site_id}#{grain}#{dimension}#{shard}"

    def _session_item(self, session: Session) -> dict:
        return to_item({**asdict(session), "pk": self._session_pk(session.site_id, session.session_id),
                        "sk": "session", "xpk": f"{session.site_id}#{self._shard(session.session_id)}",
                        "visitor_key": f"{session.site_id}#{session.user_id}",  # a visitor's visits
                        "etag": secrets.token_hex(8),
                        "expires_at": _hourly_expires_s(session.last_seen_ms)})

    def _visitor_item(self, visitor: Visitor) -> dict:
        return to_item({**asdict(visitor), "pk": self._visitor_pk(visitor.site_id, visitor.user_id),
                        "sk": "visitor", "xpk": f"{visitor.site_id}#{self._shard(visitor.user_id)}",
                        "etag": secrets.token_hex(8),
                        "expires_at": _hourly_expires_s(visitor.last_seen_ms)})

    def _record_items(self, changes: Changes) -> list[dict]:
        """The items of the sessions and visitors a change upserts."""
        return ([self._session_item(s) for s in changes.sessions]
                + [self._visitor_item(v) for v in changes.visitors])

    def _counter_update(self, item: CounterItem, metrics: dict[str, float], shard: int,
                        attributes: dict[str, float] | None = None) -> dict:
        """UpdateItem parameters that atomically ADD each metric's n (and each of `attributes`,
        named as they are) to one shard of a counter item. Counters are left to TTL alone: out
        of `expiry`, neither indexed nor deleted by the purge (retention.py); the caller lists
        the item's partition for a site's deletion."""
        site_id, grain, dimension, bucket, value = item
        added = {**{metric_attribute(m): n for m, n in metrics.items()}, **(attributes or {})}
        return {"TableName": self.aggregates_table,
                "Key": self._key(self._counter_pk(site_id, grain, dimension, shard), _bucket_sort_key(bucket, value)),
                "UpdateExpression": "ADD " + ", ".join(f"#m{i} :m{i}" for i in range(len(added)))
                                    + " SET #value = :value, expires_at = :expires_at",
                "ExpressionAttributeNames": {"#value": "value", **{f"#m{i}": name for i, name in enumerate(added)}},
                "ExpressionAttributeValues": to_item({
                    **{f":m{i}": n for i, n in enumerate(added.values())}, ":value": value,
                    ":expires_at": _bucket_expires_s(grain, bucket)})}

    def _add_counters(self, counters: dict[CounterItem, dict[str, float]], shard: int) -> None:
        """ADD each item's metrics on one shard, an UpdateItem each, in parallel (no transaction)."""
        self._map(lambda kv: self.client.update_item(**self._counter_update(*kv, shard)), counters.items())

    def _add_live(self, counters: dict[CounterItem, dict[str, float]], shard: int) -> None:
        """The realtime page's counters (folding.py, AT_ONCE_GRAINS), each minute's live
        visitors by page and by source inside its "live" item (IN_LIVE_ITEM) unless this process
        found that item past LIVE_ITEM_BYTES; the rest an item a value, as `_add_counters`."""
        separate = dict(counters)
        merged: dict[CounterItem, dict[str, float]] = {}
        for item, metrics in counters.items():
            site_id, grain, dimension, bucket, value = item
            if (grain == "minute" and dimension in IN_LIVE_ITEM and set(metrics) == {"visitors"}
                    and (site_id, bucket) not in self._wide_live):
                del separate[item]
                attributes = merged.setdefault((site_id, grain, "live", bucket, ""), {})
                attributes[live_attribute(dimension, value)] = metrics["visitors"]
        if merged:  # forget the minutes the live widgets no longer read (a copy: pool threads add)
            newest = max(item[3] for item in merged)
            self._wide_live = {wide for wide in self._wide_live.copy() if wide[1] > newest - 60}
        calls = [(item, self._counter_update(item, separate.pop(item, {}), shard, attributes))
                 for item, attributes in merged.items()]
        calls += [(None, self._counter_update(item, metrics, shard)) for item, metrics in separate.items()]

        def add(call: tuple[CounterItem | None, dict]) -> None:
            live_item, parameters = call
            if live_item is None:
                self.client.update_item(**parameters)
            elif _item_bytes(self.client.update_item(**parameters, ReturnValues="ALL_NEW")["Attributes"]) > LIVE_ITEM_BYTES:
                self._wide_live.add((live_item[0], live_item[3]))
        self._map(add, calls)

    def _counter_partitions(self, items: Iterable[CounterItem], shard: int) -> list[tuple[str, str]]:
        """(site, partition key) of the counter items on a shard: what `_list_partitions` takes
        (a live page's or source's minute item may be written inside the minute's live item)."""
        return [(site_id, self._counter_pk(site_id, grain, written_in, shard))
                for site_id, grain, dimension, _, _ in items
                for written_in in ((dimension, "live") if grain == "minute" and dimension in IN_LIVE_ITEM else (dimension,))]

    def _sketch_partitions(self, keys: Iterable[UniqueKey], shard: int) -> list[tuple[str, str]]:
        return [(k.site_id, self._sketch_pk(k.site_id, k.dimension, shard, k.grain)) for k in keys]

    def _sketch_key(self, key: UniqueKey, shard: int) -> dict:
        return self._key(self._sketch_pk(key.site_id, key.dimension, shard, key.grain),
                         _bucket_sort_key(key.day, key.value))

    def _sketch_puts(self, uniques: dict[UniqueKey, set[str]], shard: int) -> list[tuple[UniqueKey, dict]]:
        """Puts that add visitor ids to one shard of each sketch, each conditional on the
        version read; none where the sketch does not change (a visitor seen already)."""
        from .. import hll  # the sketch library takes ~0.05 s to load: only where sketches are used
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
                    "expires_at": _bucket_expires_s(key.grain, key.day)})}
                puts.append((key, {"TableName": self.aggregates_table, "Item": new_item,
                                   **_if_unchanged(item["etag"]["S"] if item else None)}))
        return puts

    def _add_uniques(self, uniques: dict[UniqueKey, set[str]], shard: int) -> None:
        """Read, add, write back each sketch; again for those a concurrent writer changed."""
        self._list_partitions(self._sketch_partitions(uniques, shard))
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
        return Session(**{name: data[name] for name in SESSION_FIELDS if name in data})  # older items lack newer fields

    @staticmethod
    def _visitor(item: dict) -> Visitor:
        data = from_item(item)
        return Visitor(**{name: data[name] for name in VISITOR_FIELDS if name in data})

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
            counters = counter_items(changes.counters)
            self._list_partitions(self._counter_partitions(counters, shard))
            self._add_counters(counters, shard)
            if changes.uniques:
                self._add_uniques(changes.uniques, shard)

    def put_rollups(self, counters: dict[CounterKey, float], sketches: dict[UniqueKey, bytes]) -> None:
        """Plain puts on shard 0: rollups have one writer (the schedule), and reads merge
        shards whatever they hold. A counter item keeps the metrics this call does not name
        (read first): each metric is replaced, as SQLite replaces its row."""
        grouped = counter_items(counters)
        keys = {item: self._key(self._counter_pk(item[0], item[1], item[2], 0), _bucket_sort_key(item[3], item[4]))
                for item in grouped}
        with self._errors():
            stored = {(i["pk"]["S"], i["sk"]["S"]): i
                      for i in self._batch_get(self.aggregates_table, list(keys.values()), consistent=True)}
        items = [{**stored.get((keys[item]["pk"]["S"], keys[item]["sk"]["S"]), {}), **keys[item],
                  **to_item({**{metric_attribute(m): n for m, n in metrics.items()}, "value": item[4],
                             "expires_at": _bucket_expires_s(item[1], item[3])})}
                 for item, metrics in grouped.items()]
        items += [{**self._sketch_key(k, 0),
                   **to_item({"value": k.value, "sketch": sketch, "etag": secrets.token_hex(8),
                              "expires_at": _bucket_expires_s(k.grain, k.day)})}
                  for k, sketch in sketches.items()]
        with self._errors():
            self._register_sites({k.site_id for k in counters} | {k.site_id for k in sketches})
            self._list_partitions(self._counter_partitions(grouped, 0) + self._sketch_partitions(sketches, 0))
            self._batch_write(self.aggregates_table, [{"PutRequest": {"Item": item}} for item in items])

    # -- reads
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

    @contextmanager
    def one_moment(self) -> Iterator[None]:
        """Within it, a partition's range read once serves every read of it or of a range
        inside it (each metric of an item, the live 5 minutes of the 30): see `_buckets`."""
        if getattr(self._moment, "reads", None) is not None:  # nested: the outer moment's
            yield
            return
        self._moment.reads = {}
        try:
            yield
        finally:
            self._moment.reads = None

    def _buckets(self, pk_of_shard: Callable[[int], str], start: int, end: int, grain: str,
                 rollups: bool = False) -> list[dict]:
        """Items of every shard with start <= bucket < end (sort keys begin with the bucket).
        Rollups (every month, and what callers say put_rollups wrote) have one writer, which
        puts them on shard 0: only that one is read. In `one_moment`, from what a read of the
        same partitions over a range holding this one fetched, if any."""
        if start >= end:
            return []
        reads = getattr(self._moment, "reads", None)
        if reads is None:
            return self._read_buckets(pk_of_shard, start, end, grain, rollups)
        partitions = (pk_of_shard(0), rollups)
        for (first, last), items in reads.get(partitions, {}).items():
            if first <= start and end <= last:
                return [item for item in items if start <= self._bucket_of(item) < end]
        items = self._read_buckets(pk_of_shard, start, end, grain, rollups)
        reads.setdefault(partitions, {})[start, end] = items
        return items

    def _read_buckets(self, pk_of_shard: Callable[[int], str], start: int, end: int, grain: str,
                      rollups: bool) -> list[dict]:
        def shard_items(shard: int) -> list[dict]:
            return self._query(
                TableName=self.aggregates_table,
                KeyConditionExpression="pk = :pk AND sk BETWEEN :start AND :end",
                FilterExpression="expires_at > :horizon",  # past retention, not yet deleted by TTL
                ExpressionAttributeValues={":pk": {"S": pk_of_shard(shard)}, ":start": {"S": f"{start:010d}"},
                                           ":end": {"S": f"{end:010d}"}, ":horizon": {"N": str(horizon)}})
        with self._errors():
            horizon = self._retention_horizon_s()
            return self._fan_out(shard_items, 1 if rollups or grain == "month" else None)

    @staticmethod
    def _bucket_of(item: dict) -> int:
        return int(item["sk"]["S"][:10])

    def read_counters(self, site_id: str, metric: str, dimension: str,
                      start_hour: int, end_hour: int, grain: str = "hour",
                      rollups: bool = False) -> list[CounterRow]:
        waiting = None if rollups else self._waiting(site_id, grain, end_hour, counters=dimension)  # before the counters
        items = self._buckets(lambda shard: self._counter_pk(site_id, grain, dimension, shard),
                              start_hour, end_hour, grain, rollups)
        attribute = metric_attribute(metric)
        totals: dict[tuple[int, str], float] = defaultdict(float)
        for item in items:
            if attribute in item:  # an item holds the metrics its bucket and value counted
                totals[self._bucket_of(item), item["value"]["S"]] += float(item[attribute]["N"])
        if waiting is not None:
            self._add_waiting(totals, waiting, items, site_id, metric, grain, dimension, start_hour, end_hour)
        if grain == "minute" and dimension in IN_LIVE_ITEM and metric == "visitors":  # and the live items'
            prefix = live_attribute(dimension, "")
            for item in self._buckets(lambda shard: self._counter_pk(site_id, grain, "live", shard),
                                      start_hour, end_hour, grain):
                for name, n in item.items():
                    if name.startswith(prefix):
                        totals[self._bucket_of(item), name[len(prefix):]] += float(n["N"])
        return [CounterRow(bucket, value, n) for (bucket, value), n in totals.items()]

    def sum_counters(self, site_id: str, metric: str, dimension: str, start: int, end: int,
                     grain: str = "day", prefix: str = "", rollups: bool = False) -> dict[str, float]:
        """The prefix narrows what is summed, not what is read (items are sorted by bucket)."""
        totals: dict[str, float] = defaultdict(float)
        for row in self.read_counters(site_id, metric, dimension, start, end, grain, rollups):
            if row.value.startswith(prefix):
                totals[row.value] += row.n
        return dict(totals)

    def read_sketches(self, site_id: str, dimension: str, start_day: int, end_day: int,
                      values: Iterable[str] | None = None, grain: str = "day") -> list[SketchRow]:
        from .. import hll
        wanted = None if values is None else set(values)
        items = self._buckets(lambda shard: self._sketch_pk(site_id, dimension, shard, grain),
                              start_day, end_day, grain)
        shards: dict[tuple[int, str], list[bytes]] = defaultdict(list)
        for item in items:
            value = item["value"]["S"]
            if wanted is None or value in wanted:
                shards[self._bucket_of(item), value].append(item["sketch"]["B"])
        waiting = self._waiting(site_id, grain, end_day)
        joining = waiting.visitors.get((grain, dimension), {}) if waiting is not None else {}
        for key, user_ids in joining.items():  # a union: a visitor added again changes nothing
            if start_day <= key.day < end_day and (wanted is None or key.value in wanted):
                shards[key.day, key.value].append(hll.add_visitors(None, user_ids))
        # One row per day and value, as SQLite has: the union of its shards' sketches.
        return [SketchRow(day, value, blobs[0] if len(blobs) == 1 else hll.merge(blobs))
                for (day, value), blobs in shards.items()]
