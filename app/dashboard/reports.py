"""Reports as files (a breakdown or goals table as CSV) and the URL helpers of the report pages.

The overview and every widget read their period and filters from the query string (the same one
GET /api/stats reads), so a filtered view is a URL that can be bookmarked or shared.
"""
from __future__ import annotations

import csv
import io

from flask import abort, current_app, g

from app.analytics import goal_reports, stats
from app.analytics.goals import ANY_CONVERSION
from app.api.schemas import ReportQuery
from app.auth.access import site_url
from app.context import get_store
from app.i18n import gettext as _
from app.store.base import Site

from .views import bp, report_query
from .widgets import BREAKDOWNS, PageQuery


@bp.get("/sites/<site_id>/reports/<name>.csv")
@bp.get("/share/<token>/reports/<name>.csv")
def report_csv(site_id: str, name: str):
    """A whole breakdown or goals table (up to 1,000 rows) as CSV."""
    site, store = g.site, get_store()
    query = report_query(site)
    if name not in BREAKDOWNS and name not in goal_reports.TABLES:
        abort(404, _("no breakdown %(name)s", name=repr(name)))
    with store.one_moment():  # a partition's range read once for all the table's metrics
        if name in BREAKDOWNS:
            dimension = BREAKDOWNS[name][2]
            rows = stats.breakdown(store, site, query.period, dimension, query.filters, stats.MAX_LIMIT)["rows"]
        else:
            dimension = CSV_LABELS.get(name, "value")  # goals and props rows have a "value" of their own
            rows = [_flat(row) for row in goal_reports.table(
                store, site, query.period, name, query.filters, stats.MAX_LIMIT, query.event)["rows"]]
    return csv_download(rows, f"{site.site_id}-{name}-{query.period.first}-{query.period.last}.csv",
                        {"value": dimension})


def csv_download(rows: list[dict], filename: str, headers: dict[str, str] | None = None):
    """Rows as a CSV file to download: a column per key, in the order keys first appear,
    headed by its name (or `headers[key]`)."""
    out = io.StringIO()
    columns = list(dict.fromkeys(c for row in rows for c in row)) or ["value"]
    # Every field quoted, rows ended by CRLF (RFC 4180): a value holding a line break stays in its cell.
    writer = csv.DictWriter(out, fieldnames=columns, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow({c: (headers or {}).get(c, c) for c in columns})
    for row in rows:
        writer.writerow({k: csv_safe(v) for k, v in row.items()})
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
        return _("any conversion")
    try:
        return goal_reports.goal_name(site, key)
    except stats.StatsError:
        return key


@bp.app_template_global()
def report_url(endpoint: str, q: ReportQuery | PageQuery, **changes) -> str:
    """A reports URL keeping the current period and filters (and a page's own arguments), with
    changes applied."""
    return site_url(endpoint, **q.args(**changes))


@bp.app_template_global()
def report_args(q: ReportQuery | PageQuery | None) -> dict:
    """The period and filters a report page passes on to the other report pages."""
    report = q.report if isinstance(q, PageQuery) else q
    return report.args(metric=None) if report else {}
