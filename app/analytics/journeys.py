"""Journeys: the paths visits take through a site, worked out from visit summaries.

- Top paths: visits by their first N pages (N up to MAX_PATH_PAGES); a visit with fewer pages
  ends its path early. Reloads and pages cut by events are one step (aggregate.py, summaries.py).
  A day keeps its MAX_DAY_PATHS most common paths of each length; the visits of the others
  count as "other paths" that day, so a period's paths are exact unless a path falls outside a
  day's top list (the bench measures how often).
- Next and previous pages: for a page, the pages viewed right after and right before it, each
  with its share of the page's views, where visits ended on it (EXIT) and began on it (ENTRANCE).
"""
from __future__ import annotations

import functools
import json
from typing import Callable

from app.analytics.funnels import FUNNEL_DIMENSIONS, funnel_report, funnels_of
from app.analytics.goals import MAX_STEP_TEXT
from app.analytics.periods import (Period, day_from_number, local_day_number, month_days, month_number,
                                   parse_period)
from app.analytics.summaries import (Digest, Report, Summary, digest, digest_name, key, key_prefix, matches,
                                     sharing_summaries)
from app.i18n import gettext as _
from app.store.base import Site, Store

MAX_PATH_PAGES = 5
MAX_DAY_PATHS = 1000
OTHER_PATHS = "(other paths)"
ENTRANCE, EXIT = "(entrance)", "(exit)"


class JourneyError(ValueError):
    """A journey report that cannot be made as asked; the message says why."""


def pages_of(summary: Summary) -> list[str]:
    """A visit's pages in order, a page repeated right after itself once."""
    pages: list[str] = []
    for page in summary.pages():
        if not pages or pages[-1] != page:
            pages.append(page)
    return pages


def _check(filters: dict[str, str]) -> dict[str, str]:
    filters = {k: v for k, v in filters.items() if v is not None}
    unknown = set(filters) - set(FUNNEL_DIMENSIONS)
    if unknown:
        raise JourneyError(_("journeys can be filtered by %(dimensions)s, not by %(unknown)s",
                             dimensions=", ".join(FUNNEL_DIMENSIONS), unknown=", ".join(sorted(unknown))))
    return filters


def _paths(length: int, filters: dict[str, str]) -> Report:
    """Visits by their first `length` pages; a day keeps its MAX_DAY_PATHS most common."""
    def keys(summary: Summary) -> list[str]:
        pages = pages_of(summary)[:length] if not filters or matches(summary, filters) else []
        return [key(*pages)] if pages else []

    def finish(day: Digest) -> Digest:
        if len(day) <= MAX_DAY_PATHS:
            return day
        ranked = sorted(day.items(), key=lambda item: -item[1])
        kept = dict(ranked[:MAX_DAY_PATHS])
        kept[key(OTHER_PATHS)] = sum(n for _, n in ranked[MAX_DAY_PATHS:])
        return kept
    return Report(digest_name("paths", length, sorted(filters.items())), keys, finish)


def top_paths(store: Store, site: Site, period: Period, today: int, length: int = 3,
              filters: dict[str, str] | None = None, limit: int = 20) -> dict:
    """The most common paths of the visits' first `length` pages, with their share of visits."""
    if not 1 <= length <= MAX_PATH_PAGES:
        raise JourneyError(_("a path has 1 to %(most)s pages", most=MAX_PATH_PAGES))
    filters = _check(filters or {})
    totals = digest(store, site, _paths(length, filters), period.first_day, period.last_day + 1, today)
    visits = sum(totals.values())
    other = totals.pop(key(OTHER_PATHS), 0)
    # Only the paths that can be shown are decoded (a month holds tens of thousands).
    counts = sorted(totals.values(), reverse=True)
    least = counts[limit - 1] if len(counts) >= limit else 0
    ranked = sorted(((json.loads(v), n) for v, n in totals.items() if n >= least), key=lambda item: (-item[1], item[0]))
    return {"length": length, "visits": int(visits), "other_paths": int(other), "paths": [
        {"pages": pages, "visits": int(n), "ended": len(pages) < length, "share": _share(n, visits)}
        for pages, n in ranked[:limit]]}


def _transitions(filters: dict[str, str]) -> Report:
    """Per view of a page, [page, "n", next page or EXIT] and [page, "p", previous page or
    ENTRANCE]: the page first, so one read by its prefix finds both."""
    key_of = functools.lru_cache(maxsize=100_000)(key)  # pairs of pages recur in many visits

    def keys(summary: Summary) -> list[str]:
        if filters and not matches(summary, filters):
            return []
        pages = pages_of(summary)
        return [k for i, page in enumerate(pages) for k in (
            key_of(page, "n", pages[i + 1] if i + 1 < len(pages) else EXIT),
            key_of(page, "p", pages[i - 1] if i else ENTRANCE))]
    return Report(digest_name("transitions", sorted(filters.items())), keys)


def next_and_previous(store: Store, site: Site, period: Period, today: int, page: str,
                      filters: dict[str, str] | None = None, limit: int = 20) -> dict:
    """For a page: where its views went next (or EXIT) and came from (or ENTRANCE)."""
    if not page:
        raise JourneyError(_("say which page (page=/path)"))
    page, filters = page[:MAX_STEP_TEXT], _check(filters or {})  # summaries keep that much of a path
    totals = digest(store, site, _transitions(filters), period.first_day, period.last_day + 1, today,
                    prefix=key_prefix(page), holding=json.dumps(page, ensure_ascii=False))  # the page, as stored
    by_direction: dict[str, list[tuple[str, float]]] = {"n": [], "p": []}
    for value, n in totals.items():
        _this, direction, other = json.loads(value)  # (not `_`: gettext here)
        by_direction[direction].append((other, n))
    answer: dict = {"page": page, "views": int(sum(n for _, n in by_direction["n"]))}
    for direction, label in (("n", "next"), ("p", "previous")):
        ranked = sorted(by_direction[direction], key=lambda item: (-item[1], item[0]))
        answer[label] = [{"page": other, "views": int(n), "share": _share(n, answer["views"])}
                         for other, n in ranked[:limit]]
    return answer


def _share(part: float, whole: float) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def keep_digests(store: Store, site: Site, now_ms: int) -> int:
    """Make now what the journey pages read first over the last 12 months (each funnel, top
    paths of every length, the page flow), so that no request has to make a year of digests:
    the retention job calls this every hour, which leaves it a newly sealed day a time. It goes
    a month at a time (what a report over the year reads: the month digests, the days of the
    months at either end), every report on the month's summaries read once. Digests are kept
    as they are made, so a run cut short goes on where it stopped. Returns how many reports
    it went through."""
    year, today = parse_period("12mo", site.timezone, now_ms), local_day_number(site.timezone, now_ms)
    for month in range(month_number(year.first), month_number(year.last) + 1):
        first, end = month_days(month)
        part = Period(year.name, max(year.first, day_from_number(first)), min(year.last, day_from_number(end - 1)))
        reports = _kept_reports(store, site, part, today)
        with sharing_summaries():
            for report in reports:
                report()
    return len(reports)


def _kept_reports(store: Store, site: Site, period: Period, today: int) -> list[Callable[[], object]]:
    reports = [lambda f=f: funnel_report(store, site, f, period, today) for f in funnels_of(site)]
    reports += [lambda n=n: top_paths(store, site, period, today, n) for n in range(1, MAX_PATH_PAGES + 1)]
    reports.append(lambda: next_and_previous(store, site, period, today, "/"))  # any page: the digest has them all
    return reports
