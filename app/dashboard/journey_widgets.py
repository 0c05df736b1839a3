"""What the funnels, journeys and retention widgets show (widgets.py makes them widgets): the
analytics reports for the page's query, with what the templates need beside them.

A report a page cannot make as asked (an unknown funnel, a path of nine pages) becomes the
widget's `error`, which the page shows in words with status 400. Filters chosen on another
page that funnels and journeys cannot apply (a page, a browser) are left out and named
(`left_out`) rather than failing the page. A report whose history has no digests yet stops at
REPORT_BUDGET_S (summaries.within) and says how far it got (`preparing`: the Preparing it
raised): its widget asks again in a moment and goes on from there.
"""
from __future__ import annotations

from math import ceil
from typing import TYPE_CHECKING

from app.analytics import cohorts as cohort_tables, funnels as funnel_reports, journeys as journey_reports
from app.analytics.funnels import FUNNEL_DIMENSIONS
from app.analytics.periods import local_day_number
from app.analytics.summaries import Preparing
from app.context import report_budget
from app.i18n import gettext as _

from . import charts

if TYPE_CHECKING:
    from .widgets import Ask

FUNNEL_ARGS = ("funnel", "funnel_breakdown")
JOURNEY_ARGS = ("paths", "page_flow")
RETENTION_ARGS = ("cohorts", "cohort_periods", "channel", "source")  # as GET /api/stats names them
DEFAULT_PATH_PAGES = 3
DEFAULT_COHORTS = 12
ROWS_SHOWN = 10  # paths, pages before and after one, breakdown rows on the page (the CSV has them all)
HEAT_STEPS = 10  # a retention cell's shade: heat-0 (none came back) to heat-10 (all did)


def today(ask: Ask) -> int:
    """The site's local day number now: what tells sealed days from those still counting."""
    return local_day_number(ask.site.timezone, ask.now)


def _number(ask: Ask, name: str, default: int, error: type[ValueError]) -> int:
    text = ask.query.own.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        # shown on the page (the JSON API reads its own arguments and says it in English)
        raise error(_("%(name)s is a whole number, not %(text)s", name=name, text=repr(text))) from None


def _filters(ask: Ask) -> tuple[dict[str, str], list[str]]:
    """The report's filters a funnel or journey applies, and the names of the others."""
    values = ask.query.filters.values
    return ({k: v for k, v in values.items() if k in FUNNEL_DIMENSIONS},
            [k for k in values if k not in FUNNEL_DIMENSIONS])


def _share(part: int | None, whole: int) -> float | None:
    return None if part is None or not whole else round(100 * part / whole, 1)


# -- funnels
def funnel(ask: Ask) -> dict:
    """The chosen funnel (?funnel=, the site's first by default) step by step, and broken down
    by a dimension when asked (?funnel_breakdown=)."""
    site, own = ask.site, ask.query.own
    listed = funnel_reports.funnels_of(site)
    applied, left_out = _filters(ask)
    answer = {"funnel": None, "dimensions": FUNNEL_DIMENSIONS, "breakdown": own.get("funnel_breakdown"),
              "applied": applied, "left_out": left_out, "rows_shown": ROWS_SHOWN}
    if not listed:
        return answer
    try:
        chosen = funnel_reports.get_funnel(site, own["funnel"]) if own.get("funnel") else listed[0]
        with report_budget():
            report = funnel_reports.funnel_report(ask.store, site, chosen, ask.query.period, today(ask), applied,
                                                  answer["breakdown"])
    except funnel_reports.FunnelError as exc:
        return {**answer, "error": str(exc)}
    except Preparing as progress:
        return {**answer, "funnel": chosen, "preparing": progress}
    for step in report["steps"]:
        step["dropped_share"] = _share(step["dropped"], step["visits"])
    return {**answer, "funnel": chosen, "report": report}


# -- journeys
def paths(ask: Ask, limit: int = ROWS_SHOWN) -> dict:
    """The most common paths of the visits' first pages (?paths=, 1 to 5 pages)."""
    applied, left_out = _filters(ask)
    answer = {"length": DEFAULT_PATH_PAGES, "lengths": range(1, journey_reports.MAX_PATH_PAGES + 1),
              "left_out": left_out}
    try:
        answer["length"] = _number(ask, "paths", DEFAULT_PATH_PAGES, journey_reports.JourneyError)
        with report_budget():
            report = journey_reports.top_paths(ask.store, ask.site, ask.query.period, today(ask), answer["length"],
                                               applied, limit)
    except journey_reports.JourneyError as exc:
        return {**answer, "error": str(exc)}
    except Preparing as progress:
        return {**answer, "preparing": progress}
    return {**answer, "report": report}


def page_flow(ask: Ask, limit: int = ROWS_SHOWN) -> dict:
    """The pages viewed right before and right after a page (?page_flow=; by default the
    period's most common first page)."""
    applied, left_out = _filters(ask)
    answer = {"page": ask.query.own.get("page_flow"), "left_out": left_out, "entrance": journey_reports.ENTRANCE,
              "exit": journey_reports.EXIT}
    try:
        with report_budget():
            page = answer["page"] = answer["page"] or _top_first_page(ask, applied)
            if page is None:
                return answer
            flow = journey_reports.next_and_previous(ask.store, ask.site, ask.query.period, today(ask), page,
                                                     applied, limit)
    except journey_reports.JourneyError as exc:
        return {**answer, "error": str(exc)}
    except Preparing as progress:
        return {**answer, "preparing": progress}
    return {**answer, "flow": flow}


def _top_first_page(ask: Ask, applied: dict[str, str]) -> str | None:
    first = journey_reports.top_paths(ask.store, ask.site, ask.query.period, today(ask), 1, applied, limit=1)
    return first["paths"][0]["pages"][0] if first["paths"] else None


# -- retention
def cohorts(ask: Ask) -> dict:
    """Visitors by the week or month of their first visit (?cohorts=week|month), over the last
    ?cohort_periods= of them, optionally only those whose first visit came from a channel or source."""
    own = ask.query.own
    period = own.get("cohorts") or "week"
    answer = {"period": period, "count": DEFAULT_COHORTS, "most": cohort_tables.MAX_PERIODS.get(period),
              "channel": own.get("channel", ""), "source": own.get("source", "")}
    try:
        answer["count"] = _number(ask, "cohort_periods", DEFAULT_COHORTS, cohort_tables.CohortError)
        filters = {k: answer[k] for k in cohort_tables.COHORT_FILTERS if answer[k]}
        table = cohort_tables.cohort_table(ask.store, ask.site, today(ask), period, answer["count"], filters)
    except cohort_tables.CohortError as exc:
        return {**answer, "error": str(exc)}
    for row in table["cohorts"]:
        row["label"] = charts.cohort_label(row["cohort"], period)
        for cell in row["retention"]:
            cell["heat"] = min(HEAT_STEPS, ceil((cell["share"] or 0) * HEAT_STEPS / 100))
    return {**answer, "table": table}
