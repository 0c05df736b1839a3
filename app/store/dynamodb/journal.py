"""Counter deltas and sketch additions journaled in the aggregation transaction and added later,
merged, exactly once (docs/dynamodb.md, "The counter journal").

A pack's transaction puts its counter deltas, and the visitors its sketches gain, in one
journal item instead of updating each counter item and sketch: a write of a unit or two in the
transaction, not two units a counter item. An applier adds them later, once the oldest waits
`counter_delay_ms`: the deltas of every pack since, summed, so an item that many packs change
(a visit's heartbeats, the day's totals) is written once, a unit, not once a pack at two; a
sketch many packs' visitors join (the day's visitors, a busy page's) is read and put once.

Once, because each (site, shard) has one applier at a time, under a lease item that numbers
its runs and lists the journal items a run took. Every counter item it adds to records the run
(`applied_run`), and an addition requires an older one: a run cut short (the function died)
is done again under the same number by whoever finds the lease expired, and adds nothing
twice. Sketches need no such care: they are unions, so adding a visitor again changes
nothing. Journal items are deleted once their run has added them all.

A quiet site's journal (its packs' shard, QUIET_SHARD) waits longest, so reports add what it
holds to what they read (`_waiting`, `_add_waiting`): its counters and sketches show a pack at
once whatever the delay. A busy site's journals wait less (BUSY_DELAY_MS) and are not read.
"""
from __future__ import annotations

import json
import logging
import secrets
import zlib
from collections import defaultdict
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError

from ..records import DAY_MS, HOUR_MS, StoreError, UniqueKey
from .client import _code, _if_unchanged
from .folding import IN_TRANSACTION, QUIET_SHARD
from .traffic import CounterItem

log = logging.getLogger(__package__)

LEASE_SK = "~lease"  # journal items' sort keys are digits: the lease sorts after them all
LEASE_MS = 120_000  # an applier still holding the lease after this is presumed dead: its run is done again
MAX_CLAIM = 400  # journal items a run takes (the lease lists them: ~10 KB)
MAX_RUNS = 10  # runs one call makes at most, then leaves the rest to the next call
# A journal a busy site's pack wrote to is added once its oldest item has waited this long (or
# the delay, if shorter), by the batch that wrote it or, once that pack's item is the oldest,
# by whoever looks (the schedule too): a busy site's packs merge well within a minute, and
# reports do not read its journals. A quiet site's waits the whole delay, and reports read it
# if no more than WAITING_READ items wait (a bounded read; more, and reports lag by the delay).
BUSY_DELAY_MS = 60_000
BUSY_SUFFIX = "#busy"  # ends the sort key of a busy site's pack's journal item
WAITING_READ = 300
# Reports read the waiting journal for ranges of hours or days reaching the last two days:
# no older bucket can still be waiting (the tracker stamps events within a day of arrival).
BUCKET_MS = {"hour": HOUR_MS, "day": DAY_MS}
WAITING_SPAN_MS = 2 * DAY_MS


def encode_deltas(counters: dict[CounterItem, dict[str, float]]) -> bytes:
    """A pack's counter deltas, compact: the site is the journal's."""
    rows = [[grain, dimension, bucket, value, metrics] for (_, grain, dimension, bucket, value), metrics in counters.items()]
    return zlib.compress(json.dumps(rows, separators=(",", ":")).encode())


def decode_deltas(site_id: str, data: bytes) -> dict[CounterItem, dict[str, float]]:
    return {(site_id, grain, dimension, bucket, value): metrics
            for grain, dimension, bucket, value, metrics in json.loads(zlib.decompress(data))}


def encode_visitors(uniques: dict[UniqueKey, set[str]]) -> bytes:
    """The visitors each sketch gains, compact: each visitor id once, then sketches by index."""
    ids = sorted({user_id for user_ids in uniques.values() for user_id in user_ids})
    index = {user_id: number for number, user_id in enumerate(ids)}
    rows = [[key.day, key.dimension, key.value, key.grain, sorted(index[u] for u in user_ids)]
            for key, user_ids in uniques.items()]
    return zlib.compress(json.dumps([ids, rows], separators=(",", ":")).encode())


def decode_visitors(site_id: str, data: bytes) -> dict[UniqueKey, set[str]]:
    ids, rows = json.loads(zlib.decompress(data))
    return {UniqueKey(site_id, day, dimension, value, grain): {ids[n] for n in numbers}
            for day, dimension, value, grain, numbers in rows}


@dataclass
class Waiting:
    """What a quiet site's journal held that no run had added yet, as one read found it, by
    (grain, dimension): what one read of counters or sketches looks at."""
    # (bucket, value) -> (the run that adds it, its metrics) for each journal item holding a delta of it
    deltas: dict[tuple[str, str], dict[tuple[int, str], list[tuple[int, dict[str, float]]]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list)))
    visitors: dict[tuple[str, str], dict[UniqueKey, set[str]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(set)))


def _waiting_of(site_id: str, lease: _Lease, entries: list[dict]) -> Waiting:
    """The journal items' deltas, each with the run that adds it: the lease's run if the lease
    lists it (that run is under way, or was cut short), a later one if not."""
    waiting, claimed = Waiting(), set(lease.claimed)
    for entry in entries:
        run = lease.run if entry["sk"]["S"] in claimed else lease.run + 1
        for (_, grain, dimension, bucket, value), metrics in decode_deltas(site_id, entry["deltas"]["B"]).items():
            waiting.deltas[grain, dimension][bucket, value].append((run, metrics))
        for key, user_ids in decode_visitors(site_id, entry["visitors"]["B"]).items():
            waiting.visitors[key.grain, key.dimension][key] |= user_ids
    return waiting


@dataclass
class _Lease:
    run: int = 0
    etag: str | None = None  # None: no lease item yet
    holder_until_ms: int = 0
    busy: bool = False  # the last run added a busy site's pack: reports do not read this journal
    claimed: list[str] = field(default_factory=list)  # a run under way: the journal items it took


class JournalMixin:
    """Counter deltas waiting in the journal, and their applier."""

    @staticmethod
    def _journal_pk(site_id: str, shard: int) -> str:
        return f"J#{site_id}#{shard}"

    def _journal_put(self, site_id: str, shard: int, counters: dict[CounterItem, dict[str, float]],
                     uniques: dict[UniqueKey, set[str]], busy: bool) -> dict:
        """The transaction's action that journals a pack's counter deltas and sketch additions;
        a busy site's pack says so in the item's key, so whoever finds it oldest adds it sooner."""
        sk = f"{self._now_ms():015d}#{secrets.token_hex(6)}{BUSY_SUFFIX if busy else ''}"  # oldest first
        item = {**self._key(self._journal_pk(site_id, shard), sk), "deltas": {"B": encode_deltas(counters)},
                "visitors": {"B": encode_visitors(uniques)}}
        return {"Put": {"TableName": self.aggregates_table, "Item": item, **_if_unchanged(None)}}

    # -- what reports add to what they read
    def _waiting(self, site_id: str, grain: str, end: int, counters: str | None = None) -> Waiting | None:
        """What the site's quiet journal holds for a read of buckets before `end`, if it may
        hold any (a read of `counters` of a dimension the transaction adds itself: none), its
        last run was not a busy site's (a busy site's packs write there too, and its reads would
        not be small) and no more than WAITING_READ items wait; None otherwise. Once a moment
        (`one_moment`). Read before the counters it is added to: the lease first, then the
        items (consistent reads), so that an item a run has added since is found gone, or
        claimed by that run, whose number the counters it added to carry (`_add_waiting`)."""
        if not self.counter_delay_ms or grain not in BUCKET_MS or (grain, counters) in IN_TRANSACTION \
                or end <= (self._now_ms() - WAITING_SPAN_MS) // BUCKET_MS[grain]:
            return None
        reads = getattr(self._moment, "reads", None)
        if reads is not None and ("waiting", site_id) in reads:
            return reads["waiting", site_id]
        pk = self._journal_pk(site_id, QUIET_SHARD)
        with self._errors():
            lease = self._lease(pk)
            entries = None if lease.busy else self._journal_items(pk, limit=WAITING_READ + 1)
        waiting = None if entries is None or len(entries) > WAITING_READ else _waiting_of(site_id, lease, entries)
        if reads is not None:
            reads["waiting", site_id] = waiting
        return waiting

    def _add_waiting(self, totals: dict[tuple[int, str], float], waiting: Waiting, items: list[dict],
                     site_id: str, metric: str, grain: str, dimension: str, start: int, end: int) -> None:
        """Add the waiting deltas of a metric to `totals` by (bucket, value), each unless the
        quiet shard's counter item, as read, carries the run that adds it (or a later one)."""
        quiet_pk = self._counter_pk(site_id, grain, dimension, QUIET_SHARD)
        applied = {(self._bucket_of(item), item["value"]["S"]): int(item.get("applied_run", {"N": "0"})["N"])
                   for item in items if item["pk"]["S"] == quiet_pk}
        for (bucket, value), adds in waiting.deltas.get((grain, dimension), {}).items():
            if start <= bucket < end:
                for run, metrics in adds:
                    if metric in metrics and applied.get((bucket, value), 0) < run:
                        totals[bucket, value] += metrics[metric]

    def apply_journals(self, now_ms: int) -> int:
        """Every site's journal items that are due (the every-minute schedule): what no later
        batch applied, a quiet site's last visits. Returns the counter items written; raises
        StoreError, once all were tried, if any journal could not be applied (it waits for the
        next run), so the function's errors alarm says so."""
        with self._errors():
            sites = [item["sk"]["S"] for item in self._registry_items() if "deleting" not in item]
        pairs = [(site_id, shard) for site_id in sites for shard in range(self.shards)]
        written = self._map(lambda pair: self._apply_or_log(*pair, now_ms), pairs)
        failed = [pair for pair, n in zip(pairs, written) if n is None]
        if failed:
            raise StoreError(f"dynamodb: {len(failed)} journals not applied, left to the next run: {failed[:5]}")
        return sum(written)

    def _apply_or_log(self, site_id: str, shard: int, now_ms: int, busy: bool = False) -> int | None:
        """Apply what is due; None on an error, logged: the journal items wait for the next try."""
        try:
            return self.apply_journal(site_id, shard, now_ms, busy)
        except (StoreError, BotoCoreError, ClientError):
            log.warning("the journal of %s, shard %d, was not applied; the next run will", site_id, shard,
                        exc_info=True)
            return None

    def apply_journal(self, site_id: str, shard: int, now_ms: int, busy: bool = False) -> int:
        """Add a shard's journaled deltas to its counters if they are due (`_due`), or a run
        was cut short. A run that added a busy site's pack says so in the lease it lets go.
        Returns the counter items written."""
        pk = self._journal_pk(site_id, shard)
        written = 0
        with self._errors():
            for _ in range(MAX_RUNS):
                oldest = self._journal_items(pk, limit=1, keys_only=True)
                if not oldest or not self._due(oldest[0]["sk"]["S"], now_ms, busy):
                    return written  # nothing due (a run cut short left its items, the oldest: due)
                lease = self._lease(pk)
                if lease.holder_until_ms > now_ms:
                    return written  # another applier is at it
                if lease.claimed:  # a run was cut short: do it again, under its number, on its items
                    run, claimed, entries = lease.run, lease.claimed, None
                else:
                    run, entries = lease.run + 1, self._journal_items(pk, limit=MAX_CLAIM)
                    claimed = [item["sk"]["S"] for item in entries]
                holder = self._take_lease(pk, lease, run, claimed, now_ms) if claimed else None
                if holder is None:
                    return written  # another applier took it first
                if entries is None:
                    entries = self._batch_get(self.aggregates_table, [self._key(pk, sk) for sk in claimed],
                                              consistent=True)
                written += self._add_entries(site_id, shard, run, entries)
                self._delete_each(self.aggregates_table, [self._key(pk, sk) for sk in claimed])
                self._release_lease(pk, run, holder, busy or any(sk.endswith(BUSY_SUFFIX) for sk in claimed))
        return written

    def _due(self, oldest_sk: str, now_ms: int, busy: bool) -> bool:
        """Whether a journal whose oldest item is this is due: it has waited the delay, or
        BUSY_DELAY_MS if a busy site's pack wrote it or has just written to the journal."""
        delay_ms = self.counter_delay_ms
        if busy or oldest_sk.endswith(BUSY_SUFFIX):
            delay_ms = min(delay_ms, BUSY_DELAY_MS)
        return int(oldest_sk[:15]) <= now_ms - delay_ms

    def _journal_items(self, pk: str, limit: int, keys_only: bool = False) -> list[dict]:
        params = {"ProjectionExpression": "pk, sk"} if keys_only else {}
        return self._query(TableName=self.aggregates_table, ConsistentRead=True, Limit=limit,
                           KeyConditionExpression="pk = :pk AND sk < :lease",
                           ExpressionAttributeValues={":pk": {"S": pk}, ":lease": {"S": LEASE_SK}}, **params)

    def _lease(self, pk: str) -> _Lease:
        """The lease as it stands (a consistent read), by a Query: reports read it too, and
        every function that reads counters may Query the table (not all may BatchGetItem)."""
        found = self._query(TableName=self.aggregates_table, ConsistentRead=True,
                            KeyConditionExpression="pk = :pk AND sk = :lease",
                            ExpressionAttributeValues={":pk": {"S": pk}, ":lease": {"S": LEASE_SK}})
        if not found:
            return _Lease()
        item = found[0]
        return _Lease(run=int(item["run"]["N"]), etag=item["etag"]["S"],
                      holder_until_ms=int(item.get("until_ms", {"N": "0"})["N"]),
                      claimed=sorted(item.get("claimed", {"SS": []})["SS"]), busy="busy" in item)

    def _take_lease(self, pk: str, lease: _Lease, run: int, claimed: list[str], now_ms: int) -> str | None:
        """Hold the lease for a run over these journal items; None if another applier changed it."""
        holder = secrets.token_hex(8)
        item = {**self._key(pk, LEASE_SK), "run": {"N": str(run)}, "etag": {"S": holder},
                "until_ms": {"N": str(now_ms + LEASE_MS)}, "claimed": {"SS": claimed}}
        return holder if self._put_if({"TableName": self.aggregates_table, "Item": item,
                                       **_if_unchanged(lease.etag)}) else None

    def _release_lease(self, pk: str, run: int, holder: str, busy: bool) -> None:
        """The run is done; if another applier took the lease meanwhile, it finishes the run.
        A busy site's run says so: reports then leave its journal unread (`_waiting`)."""
        item = {**self._key(pk, LEASE_SK), "run": {"N": str(run)}, "etag": {"S": secrets.token_hex(8)},
                **({"busy": {"BOOL": True}} if busy else {})}
        self._put_if({"TableName": self.aggregates_table, "Item": item, **_if_unchanged(holder)})

    def _add_entries(self, site_id: str, shard: int, run: int, entries: list[dict]) -> int:
        """Sum the journal items' deltas by counter item and add each sum once for this run;
        add each sketch's new visitors (again, if the run is done again: a union). Returns the
        counter items written."""
        merged: dict[CounterItem, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        visitors: dict[UniqueKey, set[str]] = defaultdict(set)
        for entry in entries:
            for item, metrics in decode_deltas(site_id, entry["deltas"]["B"]).items():
                for metric, n in metrics.items():
                    merged[item][metric] += n
            for key, user_ids in decode_visitors(site_id, entry["visitors"]["B"]).items():
                visitors[key] |= user_ids
        if visitors:
            self._add_uniques(visitors, shard)
        return sum(self._map(lambda kv: self._add_once(*kv, shard, run), merged.items()))

    def _add_once(self, item: CounterItem, metrics: dict[str, float], shard: int, run: int) -> int:
        update = self._counter_update(item, metrics, shard)
        update["UpdateExpression"] += ", #run = :run"
        update["ConditionExpression"] = "attribute_not_exists(#run) OR #run < :run"
        update["ExpressionAttributeNames"]["#run"] = "applied_run"
        update["ExpressionAttributeValues"][":run"] = {"N": str(run)}
        try:
            self.client.update_item(**update)
            return 1
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return 0  # this run added it before it was cut short
            raise
