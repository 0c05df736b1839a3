"""Section (f)'s journey reports: funnels, top paths, next and previous pages and cohort tables
over the generated history (bench/history.py), asked through GET /api/stats by bench/run.py and
called here in-process, on the same file, to tell query time from HTTP.

    .venv/bin/python -m bench.journey_reports /tmp/h.db    # the in-process check alone, on a history file

The in-process check runs in one write transaction that is rolled back at the end: the daily
digests the first (cold) calls write are gone after it, so the server's first requests that
follow are cold too, and the file is as it was.

It also measures how far top paths are from exact: a day keeps its MAX_DAY_PATHS most common
paths of each length (journeys.py) and counts the rest as "other paths", so a period's counts can
miss visits of a path that fell outside some day's list. The exact counts come from every
summary of the period (summaries.summaries and journeys.pages_of, as top_paths counts them).
"""
from __future__ import annotations

import argparse
import sys
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from app.analytics import cohorts, funnels, journeys
from app.analytics.periods import Period, local_day_number, parse_period
from app.analytics.stats import DEFAULT_LIMIT
from app.analytics.summaries import summaries
from app.store.base import Site
from app.store.sqlite import SQLiteStore
from bench import history

# Targets of the issue (p95, 2-core machine): a funnel of 4 steps over 30 days and 12 months,
# top paths and next/previous pages over 30 days, the 12-month cohort tables.
TARGET_FUNNEL_30D_MS, TARGET_FUNNEL_12MO_MS, TARGET_JOURNEY_MS = 200.0, 1_000.0, 200.0
WARM_CALLS = 5  # in-process calls after the cold one
ACCURACY_TOP = 20  # top paths compared with exact counts
ACCURACY_LENGTHS = (3, 5)


@dataclass(frozen=True)
class Report:
    name: str
    query: str  # GET /api/stats?site=ID&<query>
    answer: str  # the key of `data` that holds it
    target_ms: float | None  # p95; None: reported, no target
    first: str  # what its first request does beyond the others (its time is reported alone: "cold")
    call: Callable[["Context"], dict]  # the same report in-process


@dataclass(frozen=True)
class Context:
    store: SQLiteStore
    site: Site
    today: int
    periods: dict[str, Period]
    page: str  # the most viewed page over 30 days: the page flow's
    funnel: funnels.Funnel
    across: funnels.Funnel  # the same steps across visits (history.ACROSS_FUNNEL_ID)


def reports(page: str) -> list[Report]:
    """The journey reports (f) times, in the order it asks them (a user's: 30 days first, so the
    12-month funnel's first request makes the days 30 days did not)."""
    flow = urllib.parse.quote(page, safe="/")
    funnel = history.FUNNEL_ID
    return [
        Report("funnel 30d", f"period=30d&funnel={funnel}", "funnel", TARGET_FUNNEL_30D_MS,
               "makes the funnel's digests of the sealed days",
               lambda c: funnels.funnel_report(c.store, c.site, c.funnel, c.periods["30d"], c.today)),
        Report("funnel 12mo", f"period=12mo&funnel={funnel}", "funnel", TARGET_FUNNEL_12MO_MS,
               "makes the digests of the days and months 30 days did not",
               lambda c: funnels.funnel_report(c.store, c.site, c.funnel, c.periods["12mo"], c.today)),
        Report("funnel 12mo country=DE", f"period=12mo&funnel={funnel}&country=DE", "funnel", TARGET_FUNNEL_12MO_MS,
               "reads the keys of DE in the digests the funnel over 12 months made",
               lambda c: funnels.funnel_report(c.store, c.site, c.funnel, c.periods["12mo"], c.today,
                                               {"country": "DE"})),
        Report("funnel 30d by source", f"period=30d&funnel={funnel}&funnel_breakdown=source", "funnel", None,
               "reads the digests the funnel over 30 days made",
               lambda c: funnels.funnel_report(c.store, c.site, c.funnel, c.periods["30d"], c.today,
                                               breakdown="source")),
        Report("funnel across visits 30d", f"period=30d&funnel={history.ACROSS_FUNNEL_ID}", "funnel",
               TARGET_FUNNEL_30D_MS, "makes its digests of the sealed days, from every summary",
               lambda c: funnels.funnel_report(c.store, c.site, c.across, c.periods["30d"], c.today)),
        Report("funnel across visits 12mo", f"period=12mo&funnel={history.ACROSS_FUNNEL_ID}", "funnel",
               TARGET_FUNNEL_12MO_MS, "makes the digests of the days and months 30 days did not",
               lambda c: funnels.funnel_report(c.store, c.site, c.across, c.periods["12mo"], c.today)),
        Report("paths=3 30d", "period=30d&paths=3", "paths", TARGET_JOURNEY_MS, "makes the digests of the sealed days",
               lambda c: journeys.top_paths(c.store, c.site, c.periods["30d"], c.today, 3, limit=DEFAULT_LIMIT)),
        Report("paths=5 30d", "period=30d&paths=5", "paths", None, "makes the digests of the sealed days",
               lambda c: journeys.top_paths(c.store, c.site, c.periods["30d"], c.today, 5, limit=DEFAULT_LIMIT)),
        Report(f"page_flow={page} 30d", f"period=30d&page_flow={flow}", "page_flow", TARGET_JOURNEY_MS,
               "makes the digests of the sealed days (every page's)",
               lambda c: journeys.next_and_previous(c.store, c.site, c.periods["30d"], c.today, c.page,
                                                    limit=DEFAULT_LIMIT)),
        Report("cohorts week x53", "cohorts=week&cohort_periods=53", "cohorts", TARGET_JOURNEY_MS,
               "no digests: counters read as always",
               lambda c: cohorts.cohort_table(c.store, c.site, c.today, "week", 53)),
        Report("cohorts month x13", "cohorts=month&cohort_periods=13", "cohorts", TARGET_JOURNEY_MS,
               "no digests: counters read as always",
               lambda c: cohorts.cohort_table(c.store, c.site, c.today, "month", 13)),
    ]


def context(store: SQLiteStore, site_id: str, now_ms: int) -> Context:
    site = store.get_site(site_id)
    if site is None:
        raise ValueError(f"no site {site_id!r} in {store.path}")
    periods = {name: parse_period(name, site.timezone, now_ms) for name in ("30d", "12mo")}
    views = store.sum_counters(site_id, "pageviews", "page", periods["30d"].first_day, periods["30d"].last_day + 1)
    return Context(store, site, local_day_number(site.timezone, now_ms), periods,
                   max(views, key=views.get) if views else "/", funnels.get_funnel(site, history.FUNNEL_ID),
                   funnels.get_funnel(site, history.ACROSS_FUNNEL_ID))


def most_viewed_page(db_path: Path, site_id: str, now_ms: int) -> str:
    store = SQLiteStore(str(db_path))
    try:
        return context(store, site_id, now_ms).page
    finally:
        store.close()


class _Undo(Exception):
    """Rolls the in-process check's transaction back."""


def in_process(db_path: Path, site_id: str, now_ms: int, log=print) -> dict:
    """Each journey report called in-process: the first call's time (cold: it makes the digests
    of the sealed days) and WARM_CALLS more; what the reports say; top paths' accuracy. In one
    transaction, rolled back."""
    store = SQLiteStore(str(db_path))
    out: dict = {"reports": {}}
    try:
        ctx = context(store, site_id, now_ms)
        out["page"] = ctx.page
        try:
            with store.transaction():
                for report in reports(ctx.page):
                    started = time.perf_counter()
                    answer = report.call(ctx)
                    cold = (time.perf_counter() - started) * 1000
                    warm = []
                    for _ in range(WARM_CALLS):
                        started = time.perf_counter()
                        report.call(ctx)
                        warm.append((time.perf_counter() - started) * 1000)
                    warm.sort()
                    out["reports"][report.name] = {
                        "cold_ms": round(cold, 1), "warm_ms": [round(ms, 1) for ms in warm],
                        "warm_p50_ms": round(warm[len(warm) // 2], 1), "warm_max_ms": round(warm[-1], 1),
                        "figures": figures(report.answer, answer)}
                    log(f"    in-process {report.name}: cold {cold:,.0f} ms, warm p50 {warm[len(warm) // 2]:,.1f} ms, "
                        f"max {warm[-1]:,.1f} ms; {figures(report.answer, answer)}")
                out["paths_accuracy"] = {length: paths_accuracy(ctx, length) for length in ACCURACY_LENGTHS}
                for length, acc in out["paths_accuracy"].items():
                    log(f"    top paths ({length} pages) vs exact, top {ACCURACY_TOP}: max relative error "
                        f"{acc['max_relative_error_pct']} %, {acc['exact']} of {acc['compared']} exact, "
                        f"same order: {acc['same_order']}")
                raise _Undo
        except _Undo:
            pass
    finally:
        store.close()
    return out


def figures(kind: str, answer: dict) -> dict:
    """A few figures of a report, to see that it says something (and the same over HTTP)."""
    if kind == "funnel":
        return {"visits": [step["visits"] for step in answer["steps"]], "conversion_rate": answer["conversion_rate"],
                "visitors": [step["visitors"] for step in answer["steps"]],
                **({"rows": len(answer["breakdown"]["rows"])} if "breakdown" in answer else {})}
    if kind == "paths":
        top = answer["paths"][0] if answer["paths"] else {}
        return {"visits": answer["visits"], "other_paths": answer["other_paths"], "top": top.get("pages"),
                "top_visits": top.get("visits")}
    if kind == "page_flow":
        return {"views": answer["views"], "next": [(r["page"], r["views"]) for r in answer["next"][:2]],
                "previous": [(r["page"], r["views"]) for r in answer["previous"][:2]]}
    if kind == "cohorts":
        rows = answer["cohorts"]
        full = [c for c in rows if c["visitors"] and len(c["retention"]) > 1]
        last = full[-1] if full else {}
        return {"cohorts": len(rows), "visitors": sum(c["visitors"] for c in rows),
                "last_full": last.get("cohort"), "retained_next_pct": (last.get("retention") or [{}, {}])[1].get("share")}
    return {}


def paths_accuracy(ctx: Context, length: int) -> dict:
    """The top ACCURACY_TOP paths of top_paths over 30 days against exact counts of every visit
    summary of the period: the largest relative error of their visits, how many are exact, and
    whether the exact ranking has the same paths in the same order."""
    period = ctx.periods["30d"]
    reported = journeys.top_paths(ctx.store, ctx.site, period, ctx.today, length, limit=ACCURACY_TOP)["paths"]
    exact: Counter = Counter()
    for day in summaries(ctx.store, ctx.site.site_id, period.first_day, period.last_day + 1).values():
        for summary in day:
            pages = journeys.pages_of(summary)[:length]
            if pages:
                exact[tuple(pages)] += summary.visits
    errors = [abs(p["visits"] - exact[tuple(p["pages"])]) / exact[tuple(p["pages"])] for p in reported]
    ranked = sorted(exact.items(), key=lambda item: (-item[1], list(item[0])))[:ACCURACY_TOP]
    return {"length": length, "compared": len(reported),
            "max_relative_error_pct": round(100 * max(errors), 3) if errors else None,
            "exact": sum(1 for e in errors if e == 0),
            "same_order": [list(path) for path, _ in ranked] == [p["pages"] for p in reported],
            "visits": sum(exact.values()), "distinct_paths": len(exact)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.journey_reports", description=__doc__.split("\n")[0])
    parser.add_argument("db", type=Path, help="a history file made by bench/history.py")
    args = parser.parse_args(argv)
    in_process(args.db, history.SITE_ID, time.time_ns() // 1_000_000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
