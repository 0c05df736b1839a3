"""Visit summaries, and the daily digests reports make of them.

A visit's summary (aggregate.py, dimension JOURNEY) is its channel, source, device and country
and its ordered steps (pages, and the keys of its custom events, conversions and event goals),
each with its offset from the visit's start in seconds. It is a counter like any other: visits
alike share a row, and no row names a visitor or a visit (docs/privacy.md).

Funnels and journeys are worked out from summaries when asked, so a funnel defined today covers
the past. A busy site has ~10,000 summaries a day, too many to read again for every report, so
each report keeps a digest per day: its own few counters (metric "digest"), written once the
day is sealed and read from then on. A day is sealed when it ended more than a day ago: until
then a late event (the tracker sends events up to 24 hours old) can still change its visits.
The days not sealed yet are worked out afresh on each request. A digest's name says all it
depends on (a funnel's steps and the filters), so a changed funnel never reads a stale digest.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, NamedTuple

from app.store.base import JOURNEY, CounterKey, CounterRow, Site, Store, month_of_day, month_start_day

_quoted = json.encoder.encode_basestring  # a string as json.dumps(..., ensure_ascii=False) writes it
DIGEST, DONE = "digest", "digest_done"  # a digest's counters, and a mark per day it was made
SEALED_AFTER_DAYS = 2  # day D is sealed from local day D + 2 on
# Digests of months: a whole sealed month, summed from its days once, then read as one bucket.
MONTH = "month"


class Summary(NamedTuple):
    channel: str
    source: str
    device: str
    country: str
    steps: tuple[tuple[str, int], ...]  # (page or key, seconds since the visit began)
    visits: int  # how many visits had exactly this summary

    def pages(self) -> list[str]:
        return [step for step, _ in self.steps if step.startswith("/")]


Digest = dict[str, float]  # a digest's counters: value -> n


@dataclass(frozen=True)
class Report:
    """What a digest is made of: its name (a hash of all it depends on: digest_name), the
    digest keys one visit of a summary counts in (a key may come more than once), and what is
    done to a day's sums before they are kept. `needle`, when set, is text every stored
    summary with keys holds: the others are skipped unparsed."""
    name: str
    keys: Callable[[Summary], Iterable[str]]
    finish: Callable[[Digest], Digest] = field(default=lambda day: day)
    needle: str = ""


# (report name, stored summary) -> the keys its visits count in: the days not sealed are worked
# out on every request, from mostly the same summaries. Keys are shared strings: ~200 bytes an
# entry, ~20 MB at most.
_keys: dict[tuple[str, str], tuple[str, ...]] = {}
_shared: dict[str, str] = {}
_MAX_KEYS = 100_000

def _parse(value: str) -> tuple:
    *dims, steps = json.loads(value)
    return (*dims, tuple((step, seconds) for step, seconds in steps))


def summaries(store: Store, site_id: str, start_day: int, end_day: int) -> dict[int, list[Summary]]:
    """The visit summaries of the days start_day <= day < end_day, by day."""
    by_day: dict[int, list[Summary]] = defaultdict(list)
    for row in store.read_counters(site_id, "visits", JOURNEY, start_day, end_day, grain="day"):
        if row.n > 0:  # DynamoDB keeps the rows visits moved away from, at zero
            by_day[row.hour].append(Summary(*_parse(row.value), int(row.n)))
    return by_day


def matches(summary: Summary, filters: dict[str, str]) -> bool:
    """Whether the summary's dimensions have the filters' values."""
    return all(getattr(summary, name) == value for name, value in filters.items())


class Preparing(Exception):
    """A report over months that have no digest yet was cut short by its request's budget
    (`within`): `done` of its `total` months are worked out and kept; ask again (in `retry_s`
    seconds) to go on."""
    retry_s = 2

    def __init__(self, done: int, total: int):
        super().__init__(f"this report is being prepared from its history: {done} of {total} months done")
        self.done, self.total = done, total


# When the request making reports must stop making month digests (time.monotonic()); None: never.
_deadline: ContextVar[float | None] = ContextVar("digest_deadline", default=None)


@contextmanager
def within(seconds: float | None) -> Iterator[None]:
    """Reports made within it stop making month digests once `seconds` have passed and raise
    Preparing, each request after making at least one month's (so every one gets further): the
    first report over a year of a busy site's history, filtered, takes more than a request may
    (Lambda's 15 s, a worker's 30 s). None: no limit (the hourly job)."""
    token = _deadline.set(None if seconds is None else time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def _out_of_time() -> bool:
    deadline = _deadline.get()
    return deadline is not None and time.monotonic() >= deadline


def _keys_of(report: Report, value: str) -> tuple[str, ...]:
    """The digest keys a visit with this stored summary counts in, remembered."""
    keys = _keys.get((report.name, value))
    if keys is None:
        if len(_keys) >= _MAX_KEYS:
            _keys.clear()
            _shared.clear()
        keys = _keys[report.name, value] = tuple(_shared.setdefault(k, k)
                                                  for k in report.keys(Summary(*_parse(value), 1)))
    return keys


def digest(store: Store, site: Site, report: Report, start_day: int, end_day: int, today: int,
           prefix: str = "", holding: str = "") -> Digest:
    """The sum over start_day <= day < end_day of each day's digest (the values beginning with
    `prefix`): kept digests for sealed days (made now for those that have none), fresh ones for
    the others. The sealed months that lie whole in the period are
    read as month digests. A few reads whatever the period: the months, the sealed days before
    and after them, the fresh days. `holding`: text every summary with a key beginning with
    `prefix` holds; the fresh days' others are skipped unparsed (kept digests are whole)."""
    totals: Digest = defaultdict(float)
    sealed_end = max(start_day, min(end_day, today - SEALED_AFTER_DAYS + 1))
    first_month = month_of_day(start_day) + (month_start_day(month_of_day(start_day)) != start_day)
    end_month = month_of_day(sealed_end)  # the month holding sealed_end is not whole before it
    name = report.name
    make_days = lambda days: _made(store, site, days, report)  # noqa: E731
    if first_month < end_month:
        def make_months(months: list[int]) -> dict[int, Digest]:
            # A month at a time: each month's days are kept as they are made, so a request cut
            # short (Preparing, or a timeout) leaves them for the next, which reads them at once.
            made: dict[int, Digest] = {}
            worked = False  # whether this request has made any day's digest (not only read them)

            def make_and_note(days: list[int]) -> dict[int, Digest]:
                nonlocal worked
                worked = True
                return make_days(days)
            for month in months:
                if worked and _out_of_time():
                    raise Preparing(len(made), len(months))
                made[month] = _kept(store, site, name, "day", month_start_day(month), month_start_day(month + 1),
                                    "", make_and_note)
            return made
        _add(totals, _kept(store, site, name, MONTH, first_month, end_month, prefix, make_months))
        loose = [(start_day, month_start_day(first_month)), (month_start_day(end_month), sealed_end)]
    else:
        loose = [(start_day, sealed_end)]
    for start, stop in loose:
        if start < stop:
            _add(totals, _kept(store, site, name, "day", start, stop, prefix, make_days))
    if sealed_end < end_day:
        for fresh in _made(store, site, range(sealed_end, end_day), report, fresh=True, holding=holding).values():
            _add(totals, {v: n for v, n in fresh.items() if v.startswith(prefix)})
    return dict(totals)


def _add(totals: Digest, more: Digest) -> None:
    for value, n in more.items():
        totals[value] += n


def _made(store: Store, site: Site, days: Iterable[int], report: Report, fresh: bool = False,
          holding: str = "") -> dict[int, Digest]:
    """Digests of the given days, worked out from their summaries (read as rows; a summary's
    keys are worked out once however many days have it; one without the report's needle, or
    without `holding`, is skipped unparsed). The fresh days' keys (made again at each request)
    are remembered from one request to the next; the sealed days' are made once and kept as
    digests, so remembering theirs would only push the fresh ones out."""
    sums: dict[int, Digest] = {day: defaultdict(float) for day in days}
    if not sums:
        return {}
    made: dict[str, tuple[str, ...]] = {}

    def keys_once(report: Report, value: str) -> tuple[str, ...]:
        keys = made.get(value)
        if keys is None:
            keys = made[value] = tuple(report.keys(Summary(*_parse(value), 1)))
        return keys
    keys_of, needle = _keys_of if fresh else keys_once, report.needle
    for row in _summary_rows(store, site.site_id, min(sums), max(sums) + 1):
        if needle not in row.value or holding not in row.value:  # "" is in every one
            continue
        day = sums.get(row.hour)
        if day is not None and row.n > 0:  # DynamoDB keeps the rows visits moved away from, at zero
            for k in keys_of(report, row.value):
                day[k] += row.n
    return {day: report.finish(values) for day, values in sums.items()}


# Within sharing_summaries(), the summaries read are kept for the next report that reads the
# same days.
_shared_reads: ContextVar[dict | None] = ContextVar("shared_reads", default=None)


@contextmanager
def sharing_summaries() -> Iterator[None]:
    """Reports made within it read each run of days' summaries once (all are kept till it
    ends: use it around the reports of a month, not a year)."""
    token = _shared_reads.set({})
    try:
        yield
    finally:
        _shared_reads.reset(token)


def _summary_rows(store: Store, site_id: str, start_day: int, end_day: int) -> list[CounterRow]:
    shared, days = _shared_reads.get(), (site_id, start_day, end_day)
    if shared is not None and days in shared:
        return shared[days]
    rows = store.read_counters(site_id, "visits", JOURNEY, start_day, end_day, grain="day")
    if shared is not None:
        shared[days] = rows
    return rows


def _kept(store: Store, site: Site, name: str, grain: str, start: int, end: int, prefix: str,
          make: Callable[[list[int]], dict[int, Digest]]) -> Digest:
    """The summed digest of the buckets start <= bucket < end of a grain: those kept, and
    those missing made by `make`, kept, and added. Digests and marks are only ever written by
    put_rollups (rollups=True: DynamoDB reads them from one shard)."""
    done = {row.hour for row in store.read_counters(site.site_id, DONE, name, start, end, grain=grain, rollups=True)}
    missing = [bucket for bucket in range(start, end) if bucket not in done]
    totals: Digest = defaultdict(float)
    if not missing:
        return store.sum_counters(site.site_id, DIGEST, name, start, end, grain=grain, prefix=prefix, rollups=True)
    if len(missing) < end - start:  # the kept ones only: a write cut short may have left part of a missing one
        for row in store.read_counters(site.site_id, DIGEST, name, start, end, grain=grain, rollups=True):
            if row.hour in done and row.value.startswith(prefix):
                totals[row.value] += row.n
    counters, marks = {}, {}
    for bucket, values in make(missing).items():
        for value, n in values.items():
            if n:
                counters[CounterKey(site.site_id, bucket, DIGEST, name, value, grain)] = n
                if value.startswith(prefix):
                    totals[value] += n
        marks[CounterKey(site.site_id, bucket, DONE, name, "", grain)] = 1
    store.put_rollups(counters, {})
    store.put_rollups(marks, {})  # once every value is written: a mark is never read without them
    return totals


DIGEST_VERSION = 2  # bump when a report's digest keys change: digests kept before are not read


def digest_name(kind: str, *parts: object) -> str:
    """A digest's name from what it depends on ("#" never appears: DynamoDB keys join on it)."""
    fingerprint = hashlib.sha256(json.dumps([DIGEST_VERSION, *parts], sort_keys=True, default=str).encode())
    fingerprint = fingerprint.hexdigest()[:16]
    return f"{kind}:{fingerprint}"


def key(*parts: object) -> str:
    """A digest counter's value: its parts as a compact JSON array (json.dumps's text; strings
    quoted by its own quoting function directly, five times faster: reports make a few keys
    per visit)."""
    try:
        return "[" + ",".join(map(_quoted, parts)) + "]"
    except TypeError:  # a part that is no string (a number)
        return json.dumps(parts, separators=(",", ":"), ensure_ascii=False)


def key_prefix(*parts: object) -> str:
    """What the values of key(*parts, ...) begin with."""
    return key(*parts)[:-1] + ","

