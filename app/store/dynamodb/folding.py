"""The event log's side of the store: `fold` and what it takes (packs of events, the state read
first, one transaction per pack with its visits, remembering the events applied, and its
journal item)."""
from __future__ import annotations

import hashlib
import itertools
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from operator import itemgetter

from botocore.exceptions import BotoCoreError, ClientError

from ..base import Fold
from ..records import HOUR_MS, RAW_RETENTION_MS, Changes, FoldResult, LogEntry, Session, StoreError, Visitor
from .client import ATTEMPTS, MAX_TRANSACTION_ACTIONS, _chunks, _expires_s, _if_unchanged
from .traffic import CounterItem, counter_items

log = logging.getLogger(__package__)  # "app.store.dynamodb": one logger for the backend

PACK_EVENTS = 25  # events per aggregation transaction: their markers leave room for the rest
# A site with fewer events than this in a batch is quiet: its packs write counters, sketches
# and journal items on QUIET_SHARD, so one journal run a minute merges all of its visits (the
# day's totals, its pages, its sources once, not once a shard). A site with more spreads them
# over every shard by its sessions, as a busy one must (docs/dynamodb.md, "Write shards").
QUIET_BELOW = PACK_EVENTS
QUIET_SHARD = 0
# Counters written right after the transaction rather than journaled: the realtime page's, so
# they show a pack at once whatever the journal's delay (the live minute counters that move
# visitors, the 5-minute page views and conversions).
AT_ONCE_GRAINS = ("minute", "5min")
# Counters the transaction adds to itself, exactly once and at once: today's goal completions
# and conversions by goal and by name, which the stream function's goal alerts read right after
# the batch ("within seconds of their events"). Few: only packs with a goal or a custom event.
IN_TRANSACTION = {("day", "goal"), ("day", "name")}
# A visit's item remembers the events applied to it (`applied`: a 6-byte digest of each id, by
# the hour they arrived in) for APPLIED_KEPT_MS after their arrival, and is kept at least that
# long (_visit_expires_s), so a redelivery finds them. No record older than MAX_RECORD_AGE_S
# is folded (an hour less: clocks, a run's length): the stream function is not given one
# (template.yaml's MaximumRecordAgeInSeconds) and replay-dead-letters leaves them
# (docs/dynamodb.md, "Applied events in the visit's item").
APPLIED_KEPT_MS = RAW_RETENTION_MS - HOUR_MS
MAX_RECORD_AGE_S = (APPLIED_KEPT_MS - HOUR_MS) // 1000
DIGEST_BYTES = 6


def _event_key(event: dict) -> tuple[str, str, str]:
    return event["site_id"], event["session_id"], event["event_id"]


def _digest(event_id: str) -> bytes:
    """An applied event as its visit remembers it: two ids of one visit share it once in 2^48."""
    return hashlib.blake2b(event_id.encode(), digest_size=DIGEST_BYTES).digest()


def _visit_expires_s(received_ms: int) -> int:
    """The earliest a visit that applied an event arrived at `received_ms` may go: the end of
    the hour in which that event's digest stops being needed (at most 24 h after arrival)."""
    return -(-(received_ms + APPLIED_KEPT_MS) // HOUR_MS) * (HOUR_MS // 1000)


@dataclass
class _State:
    """What one aggregation transaction reads first (strongly consistent)."""
    sessions: dict[str, Session] = field(default_factory=dict)
    visitors: dict[str, Visitor] = field(default_factory=dict)
    etags: dict[str, str] = field(default_factory=dict)  # pk -> etag of the version read
    # (session pk, event id) a marker names, (session pk, digest) its visit remembers
    applied: set[tuple[str, str | bytes]] = field(default_factory=set)
    digests: dict[str, dict[str, bytes]] = field(default_factory=dict)  # session pk -> hour -> digests
    expires: dict[str, int] = field(default_factory=dict)  # session pk -> its expires_at as read

    def is_applied(self, pk: str, event_id: str) -> bool:
        return (pk, event_id) in self.applied or (pk, _digest(event_id)) in self.applied


def _requests(events: list[dict]) -> dict[tuple[str, str, int], list[dict]]:
    """A pack's events by the tracker request that brought them: its events share their visit
    and their arrival (a request's events of several visits, one group a visit)."""
    groups: dict[tuple[str, str, int], list[dict]] = {}
    for event in events:
        groups.setdefault((event["site_id"], event["session_id"], event["received_ms"]), []).append(event)
    return groups


def _actions(events: list[dict], changes: Changes, counters: dict) -> int:
    """The size of a pack's transaction at most: a marker per request (most go in their visit's
    item instead), the records, the counter items it adds to, the journal item."""
    return len(_requests(events)) + len(changes.sessions) + len(changes.visitors) + len(counters) + 1


def _halves(events: list[dict]) -> tuple[list[dict], list[dict]]:
    """A pack too big for one transaction, in two: between sessions when it has several, so
    each session's counters are written once; else the one session's events in two."""
    sessions = [list(group) for _, group in itertools.groupby(events, key=itemgetter("session_id"))]
    if len(sessions) == 1:
        return events[:len(events) // 2], events[len(events) // 2:]
    middle = len(sessions) // 2
    return ([e for session in sessions[:middle] for e in session],
            [e for session in sessions[middle:] for e in session])


class FoldingMixin:
    """The event log: Lambda reads the events stream, `fold` applies each event exactly once."""

    # -- the event log: read by Lambda from the events table's stream, folded here exactly once
    reads_own_log = False  # Lambda's event source mapping reads the stream and keeps the checkpoint

    def read_log(self, limit: int) -> list[LogEntry]:
        raise StoreError("on DynamoDB the events stream is read by Lambda (the stream function), not the app")

    def lead(self, wait: bool = True) -> bool:
        raise StoreError("on DynamoDB Lambda reads the events stream: one invocation per shard at a time")

    def folded_since(self, position: int | None) -> tuple[int, set[str]]:
        raise StoreError("on DynamoDB the stream function knows what it folded; the dashboard polls")

    def fold(self, entries: list[LogEntry], fold: Fold) -> FoldResult:
        """Fold stream records' events so that each counts once, however often Lambda delivers
        it. Events go in packs of one site, each pack in one transaction that puts its visits,
        each remembering the events it applied (an event that could not be folded gets its
        request's marker, with its error: set aside, never retried), and a journal item of its
        counter deltas and sketch additions; redelivered events are found there and skipped.

        Stops at the first pack that fails to write and returns the entries not applied (that
        pack and the rest), so Lambda can deliver them again, in order. Then adds what the
        journals hold that is due (journal.py); what fails there waits for the next try.
        """
        by_key = {_event_key(entry.event): entry for entry in entries}
        packs = self._packs([entry.event for entry in entries])
        site_events = Counter(event["site_id"] for pack in packs for event in pack)  # quiet or busy
        result = FoldResult()
        journals: dict[tuple[str, int], bool] = {}  # (site, shard) whose journal the packs added to: busy?
        for index, pack in enumerate(packs):
            spread = site_events[pack[0]["site_id"]] >= QUIET_BELOW
            try:
                with self._errors():
                    folded, failed = self._fold_pack(pack, fold, journals, spread)
            except StoreError:
                log.exception("aggregation failed on a pack of %d events; they will be retried", len(pack))
                result.unapplied = [by_key[_event_key(e)] for rest in packs[index:] for e in rest]
                break
            result.folded += folded
            result.set_aside += [by_key[_event_key(e)] for e, _ in failed]
        now_ms = self._now_ms()
        for (site_id, shard), busy in sorted(journals.items()):
            self._apply_or_log(site_id, shard, now_ms, busy)  # if due; else a later batch or the schedule
        return result

    @staticmethod
    def _packs(events: list[dict]) -> list[list[dict]]:
        unique = {_event_key(e): e for e in events}
        ordered = sorted(unique.values(), key=itemgetter("site_id", "session_id", "ts", "event_id"))
        packs = []
        for _, site_events in itertools.groupby(ordered, key=itemgetter("site_id")):
            packs += _chunks(list(site_events), PACK_EVENTS)
        return packs

    def _fold_pack(self, events: list[dict], fold: Fold, journals: dict[tuple[str, int], bool],
                   spread: bool) -> tuple[int, list[tuple[dict, str]]]:
        """Fold one pack; returns how many events were applied now and those set aside, and
        adds its (site, shard) to `journals` if it journaled anything. Its counters go on its
        first session's shard if `spread`, else on QUIET_SHARD (QUIET_BELOW)."""
        for attempt in range(ATTEMPTS):
            state = self._read_state(events)
            fresh = [e for e in events if not state.is_applied(*self._applied_key(e))]
            if not fresh:
                return 0, []
            site_id = fresh[0]["site_id"]
            outcome = fold(site_id, fresh, state.sessions, state.visitors)
            journaled = counter_items(outcome.changes.counters)
            at_once = {item: journaled.pop(item) for item in [item for item in journaled if item[1] in AT_ONCE_GRAINS]}
            counters = {item: journaled.pop(item) for item in [item for item in journaled
                                                                 if (item[1], item[2]) in IN_TRANSACTION]}
            if _actions(fresh, outcome.changes, counters) > MAX_TRANSACTION_ACTIONS and len(fresh) > 1:
                halves = [self._fold_pack(half, fold, journals, spread) for half in _halves(fresh)]
                return sum(n for n, _ in halves), [f for _, failed in halves for f in failed]
            shard = self._shard(fresh[0]["session_id"]) if spread else QUIET_SHARD
            self._list_partitions([*self._counter_partitions([*journaled, *at_once, *counters], shard),
                                   (site_id, self._journal_pk(site_id, shard))])
            errors = {e["event_id"]: error for e, error in outcome.failed}
            actions = self._transaction(fresh, outcome.changes, counters, state, shard, errors)
            journaling = bool(journaled or outcome.changes.uniques)
            if journaling:
                actions.append(self._journal_put(site_id, shard, journaled, outcome.changes.uniques, spread))
            if self._transact(actions):
                self._add_at_once(at_once, shard, in_live_item=not spread)
                if journaling:
                    journals[site_id, shard] = journals.get((site_id, shard), False) or spread
                return len(fresh) - len(errors), outcome.failed
            self._backoff(attempt)  # a concurrent writer won (e.g. the same visitor in two tabs)
        raise StoreError(f"dynamodb: aggregation transaction still conflicting after {ATTEMPTS} attempts")

    def _add_at_once(self, counters: dict[CounterItem, dict[str, float]], shard: int, in_live_item: bool) -> None:
        """The realtime page's counters, after the transaction and outside it: a write unit an
        item, not two, and no transaction meets another on a site's hot "this minute" items.
        At most once: a redelivered pack adds nothing (its events are applied: no fresh ones).
        One lost here (an error, or the function dying) leaves a visitor counted in an older
        minute and short in a newer one, which the live widgets stop reading within 30 minutes
        (the visitor's next move starts from where the transaction put them), or a 5-minute
        slot of the realtime chart short of the pack's page views; the hours and days reports
        read are the journal's, exactly once. A quiet site's live pages and sources go inside
        the minute's live item (`_add_live`); a busy site's would soon make it past a write unit,
        and every write of it dearer for the rest of the minute: an item a value."""
        try:
            if in_live_item:
                self._add_live(counters, shard)
            else:
                self._add_counters(counters, shard)
        except (BotoCoreError, ClientError):  # the pack is folded: a realtime count may be off
            log.warning("the realtime counters of a folded pack were not all added", exc_info=True)

    def _applied_key(self, event: dict) -> tuple[str, str]:
        return self._session_pk(event["site_id"], event["session_id"]), event["event_id"]

    def _event_marker_key(self, event: dict) -> tuple[str, str]:
        """An event's own marker, as releases before December 2026 wrote them (read until
        none can be delivered again: docs/dynamodb.md, "Upgrading to a marker a request")."""
        return self._session_pk(event["site_id"], event["session_id"]), f"event#{event['event_id']}"

    def _request_marker_key(self, event: dict) -> tuple[str, str]:
        return self._session_pk(event["site_id"], event["session_id"]), f"req#{event['received_ms']:015d}"

    def _marker_update(self, events: list[dict], errors: dict[str, str]) -> dict:
        """The events of one request (of one visit) are applied, or set aside with their error:
        their ids join the request's marker, on the condition that none of them is there yet (a
        request's events may come in two batches), so a redelivery skips them. One item a
        request, not an item an event: a request brings 1.5 events on average."""
        ids = [e["event_id"] for e in events]
        set_aside = [(i, event_id) for i, event_id in enumerate(ids) if event_id in errors]  # rare
        return {"TableName": self.aggregates_table, "Key": self._key(*self._request_marker_key(events[0])),
                "UpdateExpression": "ADD ids :ids SET expires_at = :expires"
                                    + "".join(f", #err{i} = :err{i}" for i, _ in set_aside),
                "ConditionExpression": " AND ".join(f"NOT contains(ids, :id{i})" for i in range(len(ids))),
                **({"ExpressionAttributeNames": {f"#err{i}": f"set_aside:{event_id}" for i, event_id in set_aside}}
                   if set_aside else {}),
                "ExpressionAttributeValues": {
                    ":ids": {"SS": ids}, ":expires": {"N": str(_expires_s(events[0]["received_ms"], RAW_RETENTION_MS))},
                    **{f":id{i}": {"S": event_id} for i, event_id in enumerate(ids)},
                    **{f":err{i}": {"S": errors[event_id][:1000]} for i, event_id in set_aside}}}

    def _read_state(self, events: list[dict]) -> _State:
        site_id = events[0]["site_id"]
        sessions = dict.fromkeys(e["session_id"] for e in events)
        users = dict.fromkeys(e["user_id"] for e in events)
        keys = ([(self._session_pk(site_id, s), "session") for s in sessions]
                + [(self._visitor_pk(site_id, u), "visitor") for u in users]
                + list(dict.fromkeys(self._request_marker_key(e) for e in events))
                + [self._event_marker_key(e) for e in events])
        state = _State()
        for item in self._batch_get(self.aggregates_table, [self._key(*k) for k in keys], consistent=True):
            pk, sk = item["pk"]["S"], item["sk"]["S"]
            if sk == "session":
                session = self._session(item)
                state.sessions[session.session_id] = session
                state.digests[pk] = {hour: chunk["B"] for hour, chunk in item.get("applied", {"M": {}})["M"].items()}
                state.applied.update((pk, chunk[i:i + DIGEST_BYTES]) for chunk in state.digests[pk].values()
                                     for i in range(0, len(chunk), DIGEST_BYTES))
                state.expires[pk] = int(item["expires_at"]["N"])
            elif sk == "visitor":
                visitor = self._visitor(item)
                state.visitors[visitor.user_id] = visitor
            elif sk.startswith("req#"):
                state.applied.update((pk, event_id) for event_id in item["ids"]["SS"])
            else:  # an event's own marker (before December 2026)
                state.applied.add((pk, sk.removeprefix("event#")))
            if "etag" in item:
                state.etags[pk] = item["etag"]["S"]
        return state

    def _transaction(self, events: list[dict], changes: Changes, counters: dict[CounterItem, dict[str, float]],
                     state: _State, shard: int, errors: dict[str, str]) -> list[dict]:
        """Sessions, visitors, what marks the events applied and the counters not journaled (the
        journal item is added to it) as one all-or-nothing write. Each session and visitor put
        requires the version read (optimistic concurrency). A request's events go in their
        visit's item as it is put (`_remember_applied`); those of a visit the pack does not
        change (its site deleted) or with one set aside get their request's marker."""
        table = self.aggregates_table
        changed = {self._session_pk(s.site_id, s.session_id) for s in changes.sessions}
        in_visit: dict[str, list[dict]] = defaultdict(list)
        actions = []
        for group in _requests(events).values():
            pk = self._session_pk(group[0]["site_id"], group[0]["session_id"])
            if pk in changed and not any(e["event_id"] in errors for e in group):
                in_visit[pk] += group
            else:
                actions.append({"Update": self._marker_update(group, errors)})
        for item in self._record_items(changes):
            pk = item["pk"]["S"]
            if item["sk"]["S"] == "session":  # keeps what it remembered, with or without new events
                self._remember_applied(item, in_visit.get(pk, []), state)
            actions.append({"Put": {"TableName": table, "Item": item, **_if_unchanged(state.etags.get(pk))}})
        actions += [{"Update": self._counter_update(item, metrics, shard)} for item, metrics in counters.items()]
        return actions

    def _remember_applied(self, item: dict, events: list[dict], state: _State) -> None:
        """A visit's item as put: the digests it held, less those no redelivery can need any
        more (of arrivals APPLIED_KEPT_MS before the newest), and those of `events`; kept until
        the last of them may go (`_visit_expires_s`: later than its events' time says if the
        visitor's clock is slow)."""
        pk = item["pk"]["S"]
        digests = state.digests.get(pk, {})
        expires = max(int(item["expires_at"]["N"]), state.expires.get(pk, 0))
        if events:
            newest = max(e["received_ms"] for e in events)
            first_kept = (newest - APPLIED_KEPT_MS) // HOUR_MS  # older arrivals are past MAX_RECORD_AGE_S
            digests = {hour: chunk for hour, chunk in digests.items() if int(hour) >= first_kept}
            for event in events:
                hour = str(event["received_ms"] // HOUR_MS)
                digests[hour] = digests.get(hour, b"") + _digest(event["event_id"])
            expires = max(expires, _visit_expires_s(newest))
        if digests:
            item["applied"] = {"M": {hour: {"B": chunk} for hour, chunk in digests.items()}}
        item["expires_at"] = {"N": str(expires)}
