"""Month rollups: each settled month's daily counters summed, and its daily unique-visitor
sketches merged, into one row per value, so a 12-month report reads about 12 rows per value
instead of about 365 (see docs/reports.md).

The retention job writes them (app/retention.py: the single box's background thread, the
hourly function on AWS), oldest month first, once a month has been over for SEAL_AFTER_DAYS:
by then no event can change its days any more (events older than 24 hours are refused).
Rollups are put whole, so writing a month again changes nothing. Reports read a month from
its rollup only when it lies whole inside their period and the site's `rolled_up_month`
says it is written; every other day is read from the daily rows.
"""
from __future__ import annotations

from datetime import timedelta

from app.analytics.aggregate import DAY_COUNTERS, SKETCH_DIMENSIONS
from app.analytics.goals import funnel_sketch
from app.analytics.periods import local_today, month_days, month_number
from app.store import hll
from app.store.base import ROLLUP_RETENTION_DAYS, CounterKey, Site, Store, UniqueKey

# Days after a month's end before it is rolled up: late events (<= 24 h) and the visits that
# ran past midnight have settled by then. A visit kept alive by heartbeats for longer than
# this still adds to its first day's rows, not to the rollup (documented in docs/reports.md).
SEAL_AFTER_DAYS = 3


def months_to_roll_up(site: Site, now_ms: int) -> range:
    """The settled months of a site not rolled up yet, oldest first, within retention."""
    today = local_today(site.timezone, now_ms)
    last = month_number(today - timedelta(days=SEAL_AFTER_DAYS)) - 1
    oldest_kept = month_number(today - timedelta(days=ROLLUP_RETENTION_DAYS))
    created = month_number(local_today(site.timezone, site.created_ms))
    return range(max(site.rolled_up_month + 1, oldest_kept, created), last + 1)


def roll_up_site(store: Store, site: Site, now_ms: int) -> list[int]:
    """Write the rollups of every month due; returns the month numbers written."""
    done = []
    for month in months_to_roll_up(site, now_ms):
        store.put_rollups(*month_rollups(store, site, month))
        store.set_rolled_up_month(site.site_id, month)
        done.append(month)
    return done


def month_rollups(store: Store, site: Site, month: int) -> tuple[dict[CounterKey, float], dict[UniqueKey, bytes]]:
    """A month's counters (the sums of its days) and sketches (the unions of its days)."""
    site_id, (start, end) = site.site_id, month_days(month)
    counters = {}
    for metric, dimension in DAY_COUNTERS:
        for value, n in store.sum_counters(site_id, metric, dimension, start, end, "day").items():
            if n:
                counters[CounterKey(site_id, month, metric, dimension, value, "month")] = n
    sketches = {}
    for dimension in sketch_dimensions(site):
        unions: dict[str, hll.Union] = {}
        # A week at a time: a month of a busy site's page sketches can be large.
        for week in range(start, end, 7):
            for row in store.read_sketches(site_id, dimension, week, min(week + 7, end)):
                unions.setdefault(row.value, hll.Union()).add(row.sketch)
        sketches.update({UniqueKey(site_id, month, dimension, value, "month"): union.result()
                         for value, union in unions.items()})
    return counters, sketches


def sketch_dimensions(site: Site) -> tuple[str, ...]:
    """The dimensions of a site's sketches: every site's, and its funnels' by value (those of a
    deleted funnel are no longer read)."""
    return SKETCH_DIMENSIONS + tuple(funnel_sketch(f["id"]) for f in site.funnels if f.get("visitors_by_ms"))
