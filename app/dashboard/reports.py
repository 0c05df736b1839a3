"""Historical reports on the dashboard: a period, top metrics, charts and breakdowns, filters.

The page and every widget read their period and filters from the query string (the same one
GET /api/stats reads), so a filtered view is a URL that can be bookmarked or shared.
"""
from __future__ import annotations

import csv
import io

from flask import abort, current_app, g, render_template, request
from marshmallow import ValidationError

from app.analytics import goal_reports, stats
from app.analytics.goals import ANY_CONVERSION
from app.analytics.periods import PERIODS
from app.api.schemas import ReportQuery, parse_report_query
from app.context import get_store, now_ms
from app.ingest.schema import describe
from app.store.base import Site

from app.auth.access import site_url

from .views import bp, partial_or_page, switchable_sites

# Breakdown widgets: name -> (title, dimension).
BREAKDOWN_WIDGETS = {
    "pages": ("Top pages", "page"), "entry": ("Entry pages", "entry"), "exit": ("Exit pages", "exit"),
    "sources": ("Sources", "source"), "channels": ("Channels", "channel"),
    "utm_source": ("UTM sources", "utm_source"), "utm_medium": ("UTM mediums", "utm_medium"),
    "utm_campaign": ("UTM campaigns", "utm_campaign"),
    "browsers": ("Browsers", "browser"), "os": ("Operating systems", "os"),
    "devices": ("Devices", "device"), "countries": ("Countries", "country"),
}
# Widgets of what visits reached and sent (analytics/goal_reports.py): name -> title.
GOAL_WIDGETS = {"goals": "Goals and conversions", "events": "Custom events", "outbound": "Outbound links",
                "downloads": "File downloads", "not_found": "Pages not found"}
WIDGETS = ("metrics", "chart", "recent", *GOAL_WIDGETS, *BREAKDOWN_WIDGETS, "filtered")
RECENT_POLL_SECONDS = 30
REPORT_POLL_SECONDS = 60
FILTER_OF = {"entry": "page", "exit": "page"}  # clicking an entry or exit page filters by page


def _query(site: Site) -> ReportQuery:
    try:
        return parse_report_query(request.args.to_dict(), site, now_ms())
    except ValidationError as error:
        abort(400, describe(error))


def _widget(site: Site, query: ReportQuery, name: str) -> dict:
    store, now = get_store(), now_ms()
    context = {"name": name, "poll_seconds": RECENT_POLL_SECONDS if name == "recent" else REPORT_POLL_SECONDS}
    if name == "metrics":
        context["summary"] = stats.summary(store, site, query.period, query.filters)
    elif name == "chart":
        context["series"] = stats.timeseries(store, site, query.period, query.filters)
    elif name == "recent":
        context["series"] = stats.last_100_minutes(store, site, now)
    elif name == "filtered":
        context.update(filtered=stats.filtered(store, site, query.period), reasons=stats.DROP_REASONS)
    elif name in GOAL_WIDGETS:
        context.update(title=GOAL_WIDGETS[name],
                       table=goal_reports.table(store, site, query.period, name, query.filters, query.limit))
        if name == "events" and (query.filters.goal or "").startswith("e:"):
            context["properties"] = goal_reports.event_properties(
                store, site, query.period, query.filters.goal[2:], query.limit)
    else:
        title, dimension = BREAKDOWN_WIDGETS[name]
        context.update(title=title, dimension=dimension, filter_key=FILTER_OF.get(dimension, dimension),
                       table=stats.breakdown(store, site, query.period, dimension, query.filters, query.limit))
    return context


def _render_page(site: Site, query: ReportQuery):
    widgets = {name: _widget(site, query, name) for name in WIDGETS}
    return render_template("pages/reports.html", site=site, q=query, widgets=widgets,
                           periods=PERIODS, breakdown_widgets=BREAKDOWN_WIDGETS, goal_widgets=GOAL_WIDGETS,
                           sites=switchable_sites())


@bp.get("/sites/<site_id>/reports")
@bp.get("/share/<token>/reports")
def reports(site_id: str):
    return _render_page(g.site, _query(g.site))


@bp.get("/sites/<site_id>/reports/widgets/<name>")
@bp.get("/share/<token>/reports/widgets/<name>")
def report_widget(site_id: str, name: str):
    site = g.site
    if name not in WIDGETS:
        abort(404, f"no report widget {name!r}")
    query = _query(site)
    template = f"partials/reports/_{_template_of(name)}.html"
    return partial_or_page(
        lambda: render_template(template, site=site, q=query, w=_widget(site, query, name)),
        lambda: _render_page(site, query))


def _template_of(name: str) -> str:
    if name in BREAKDOWN_WIDGETS:
        return "breakdown"
    return "links" if name in goal_reports.LINK_REPORTS else name


@bp.get("/sites/<site_id>/reports/<name>.csv")
@bp.get("/share/<token>/reports/<name>.csv")
def report_csv(site_id: str, name: str):
    """A whole breakdown or goals table (up to 1,000 rows) as CSV."""
    site, store = g.site, get_store()
    query = _query(site)
    if name in BREAKDOWN_WIDGETS:
        dimension = BREAKDOWN_WIDGETS[name][1]
        rows = stats.breakdown(store, site, query.period, dimension, query.filters, stats.MAX_LIMIT)["rows"]
    elif name in goal_reports.TABLES:
        dimension = CSV_LABELS.get(name, "value")  # goals and props rows have a "value" of their own
        rows = [_flat(row) for row in goal_reports.table(
            store, site, query.period, name, query.filters, stats.MAX_LIMIT, query.event)["rows"]]
    else:
        abort(404, f"no breakdown {name!r}")
    out = io.StringIO()
    columns = list(dict.fromkeys(c for row in rows for c in row)) or ["value"]
    # Every field quoted, rows ended by CRLF (RFC 4180): a value holding a line break stays in its cell.
    writer = csv.DictWriter(out, fieldnames=columns, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow({c: dimension if c == "value" else c for c in columns})
    for row in rows:
        writer.writerow({k: csv_safe(v) for k, v in row.items()})
    filename = f"{site.site_id}-{name}-{query.period.first}-{query.period.last}.csv"
    response = current_app.response_class(out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# What the "value" column of a goals table holds, as its CSV header says it.
CSV_LABELS = {"events": "event", "outbound": "host", "outbound_url": "url", "downloads": "file", "not_found": "page"}


def _flat(row: dict) -> dict:
    """A row whose nested figures (a goal's changes, a page's referrers) become columns."""
    flat = {}
    for key, value in row.items():
        if key == "change":
            flat.update({f"{metric}_change_percent": n for metric, n in value.items()})
        elif key in ("referrers", "urls"):
            flat[key] = " ".join(f"{r['value']} ({r['events']})" for r in value)
        else:
            flat[key] = value
    return flat


FORMULA_STARTS = ("=", "+", "-", "@", "\t")


def csv_safe(value):
    """A cell a spreadsheet shows as text: values strangers control must not run as formulas
    (a leading =, +, -, @ or tab gets a quote before it, and so does one after any line break,
    where a reader that splits the cell would start a new one)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        return value
    lines = value.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join("'" + line if line.startswith(FORMULA_STARTS) else line for line in lines)


@bp.app_template_global()
def goal_label(site: Site, key: str) -> str:
    """A goal filter's key as the reader knows it: the goal's name."""
    if key == ANY_CONVERSION:
        return "any conversion"
    try:
        return goal_reports.goal_name(site, key)
    except stats.StatsError:
        return key


@bp.app_template_global()
def report_url(endpoint: str, q: ReportQuery, **changes) -> str:
    """A reports URL keeping the current period and filters, with changes applied."""
    return site_url(endpoint, **q.args(**changes))
