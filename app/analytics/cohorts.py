"""Cohort retention: visitors grouped by the week or month of their first visit, and the share
of each group seen again in each week or month after.

No visitor table is kept. The tracker records when it made the visitor's id and where that
first visit came from, and sends both with every event, with the time of the browser's previous
event; the aggregator counts a visitor once in each week and month they come back in, under
their cohort (aggregate.py `_count_cohort`): counter buckets are the week's or month's first
day, values the cohort's first day. A cohort's size is its visitors in its own week or month.
Visitors whose tracker predates this (no creation time) are in no cohort.
"""
from __future__ import annotations

from collections import defaultdict

from app.analytics.aggregate import COHORT_PERIODS, cohort_dimension, period_start
from app.analytics.periods import day_from_number
from app.i18n import gettext as _
from app.ingest.sources import CHANNELS
from app.store.base import Site, Store

MAX_PERIODS = {"week": 53, "month": 13}  # 12 months back
COHORT_FILTERS = ("channel", "source")


class CohortError(ValueError):
    """A cohort table that cannot be made as asked; the message says why."""


def _periods(period: str, today: int, count: int) -> list[int]:
    """The first days of the last `count` weeks or months, the current one last."""
    starts = [period_start(period, today)]
    while len(starts) < count:
        previous = starts[-1] - 1
        starts.append(period_start(period, previous))
    return starts[::-1]


def cohort_table(store: Store, site: Site, today: int, period: str = "week", count: int = 12,
                 filters: dict[str, str] | None = None) -> dict:
    """One row per cohort (oldest first): its size and, for each later period up to now, the
    visitors seen again and their share of the cohort."""
    if period not in COHORT_PERIODS:
        raise CohortError(_("cohorts are by %(one)s or %(other)s", one=COHORT_PERIODS[0], other=COHORT_PERIODS[1]))
    if not 1 <= count <= MAX_PERIODS[period]:
        raise CohortError(_("at most %(most)s weeks back", most=MAX_PERIODS[period]) if period == "week"
                          else _("at most %(most)s months back", most=MAX_PERIODS[period]))
    filters = {k: v for k, v in (filters or {}).items() if v is not None}
    unknown = set(filters) - set(COHORT_FILTERS)
    if unknown or len(filters) > 1:
        raise CohortError(_("cohorts can be filtered by the channel or the source of the first visit (one of them)"))
    starts = _periods(period, today, count)
    # Every visitor is counted under their first visit's channel: all of them are the sum.
    dimensions = [cohort_dimension(period, by, value) for by, value in filters.items()] or \
        [cohort_dimension(period, "channel", channel) for channel in CHANNELS]
    seen: dict[int, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for dimension in dimensions:
        for row in store.read_counters(site.site_id, "visitors", dimension, starts[0], today + 1, grain="day"):
            seen[int(row.value)][row.hour] += row.n
    cohorts = []
    for i, start in enumerate(starts):
        size = seen[start][start]
        later = [seen[start][other] for other in starts[i:]]
        cohorts.append({
            "cohort": day_from_number(start).isoformat(),
            "visitors": int(size),
            "retention": [{"offset": k, "visitors": int(n), "share": round(100 * n / size, 1) if size else None}
                          for k, n in enumerate(later)],
        })
    return {"period": period, "periods": count, "filter": filters, "cohorts": cohorts}

