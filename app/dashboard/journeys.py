"""The funnels, journeys and retention pages of a site (and of its public links, read-only),
their CSV files, and the admin's forms that add and delete funnels (each written to the audit
log).

Each page is made of widgets (widgets.JOURNEY_PAGES; what they show: journey_widgets.py) that
refresh like the overview's. A page's own query arguments (?funnel=, ?paths=, ?cohorts=...)
ride beside the period and filters in a PageQuery, so its links and refreshes keep them.
"""
from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request
from flask_babel import force_locale
from werkzeug.datastructures import MultiDict

from app.analytics import funnels as funnel_reports
from app.analytics.goals import goals_of
from app.analytics.periods import local_today
from app.analytics.stats import MAX_LIMIT
from app.auth import audit
from app.auth.access import needs_role, site_url
from app.context import get_store, now_ms
from app.i18n import gettext as _

from . import journey_widgets as jw
from .reports import csv_download
from .settings import actor
from .views import bp, switchable_sites, widget_query
from .widgets import JOURNEY_PAGES, WIDGETS, Ask, render_data

STEP_ROWS_SHOWN = 4  # the funnel form's step rows before "more steps" (up to MAX_STEPS)
WINDOW_CHOICES = (1, 3, 7, 14, 30)  # the funnel form's windows across visits, in days (besides within one visit)


def _ask(page: str) -> Ask:
    """The page's question: its widgets share their query arguments, so the first one's do."""
    return Ask(get_store(), g.site, now_ms(), widget_query(g.site, WIDGETS[JOURNEY_PAGES[page][0]]))


def _render(page: str, status: int = 200, **context):
    """A page with its widgets; 400 when one of them could not be made as the URL asks."""
    ask = _ask(page)
    widgets = {name: render_data(WIDGETS[name], ask) for name in JOURNEY_PAGES[page]}
    if any(w.get("error") for w in widgets.values()):
        status = 400
    return render_template(f"pages/{page}.html", site=g.site, q=ask.query, widgets=widgets, WIDGETS=WIDGETS,
                           running=ask.running, sites=switchable_sites(), **context), status


# -- the pages
@bp.get("/sites/<site_id>/funnels")
@bp.get("/share/<token>/funnels")
def funnels(site_id: str):
    return _render_funnels()


def _render_funnels(status: int = 200, error: str | None = None, typed: MultiDict | None = None):
    """The funnels page; after a refused form, the form again as the admin typed it (its rows in
    sight up to the last one filled)."""
    typed = typed or MultiDict()
    rows = list(zip(typed.getlist("kind"), typed.getlist("match")))[:funnel_reports.MAX_STEPS]
    filled = max((i + 1 for i, (kind, match) in enumerate(rows) if match.strip() or kind.startswith("goal:")),
                 default=0)
    return _render("funnels", status, funnels=funnel_reports.funnels_of(g.site), goals=goals_of(g.site),
                   step_kinds=funnel_reports.STEP_KINDS, error=error, name=typed.get("name", ""),
                   rows=rows + [("page", "")] * (funnel_reports.MAX_STEPS - len(rows)),
                   rows_shown=max(STEP_ROWS_SHOWN, filled), windows=WINDOW_CHOICES,
                   window_days=typed.get("window_days", "0"))


@bp.get("/sites/<site_id>/journeys")
@bp.get("/share/<token>/journeys")
def journeys(site_id: str):
    return _render("journeys")


@bp.get("/sites/<site_id>/retention")
@bp.get("/share/<token>/retention")
def retention(site_id: str):
    return _render("retention")


# -- the admin's funnel forms
@bp.post("/sites/<site_id>/funnels")
@needs_role("admin")
def add_funnel(site_id: str):
    """A funnel from the form: a name, up to MAX_STEPS rows of (kind, text), where a goal step's
    kind is "goal:<id>" (the goal chosen in the same select) and its text is unused, and its
    window across visits in days (0: within one visit)."""
    form = request.form
    steps = [("goal", kind[5:]) if kind.startswith("goal:") else (kind, match)
             for kind, match in zip(form.getlist("kind"), form.getlist("match"))]
    try:
        funnel = funnel_reports.new_funnel(g.site, form.get("name", ""), steps, now_ms(), form.get("window_days", "0"))
    except funnel_reports.FunnelError as exc:
        return _render_funnels(400, str(exc), form)
    funnel_reports.add_funnel(get_store(), g.site, funnel)
    return _saved(_("Funnel %(name)s added. It covers the days before it too.", name=repr(funnel.name)),
                  "funnel.add", funnel,
                  funnel=funnel.id)


@bp.post("/sites/<site_id>/funnels/<funnel_id>/delete")
@needs_role("admin")
def delete_funnel(site_id: str, funnel_id: str):
    try:
        funnel = funnel_reports.delete_funnel(get_store(), g.site, funnel_id)
    except funnel_reports.FunnelError as exc:
        abort(404, str(exc))
    return _saved(_("Funnel %(name)s deleted.", name=repr(funnel.name)), "funnel.delete", funnel, funnel=None)


def _saved(message: str, action: str, changed: funnel_reports.Funnel, **shown):
    """Record the change in the audit log, say so, and show the funnels again (the period and
    filters the form was sent from, with `shown` changed)."""
    with force_locale("en"):  # the audit log's words are English, whatever the page speaks
        steps = " → ".join(funnel_reports.step_label(g.site, step) for step in changed.steps)
    across = f" (across visits within {changed.window_days} days)" if changed.window_days else ""
    audit.record(get_store(), g.site.site_id, actor(), action, f"{changed.name}: {steps}{across}", now_ms())
    flash(message)
    args = {k: v for k, v in {**request.args.to_dict(), **shown}.items() if v is not None}
    return redirect(site_url("dashboard.funnels", **args))


# -- CSV
def _data(page: str, widget: str, **options) -> tuple[dict, Ask]:
    """What a widget of the page shows, for a CSV file: a URL it cannot answer is a 400, a
    report still being prepared a 503."""
    ask = _ask(page)
    data = getattr(jw, widget)(ask, **options)
    if data.get("error"):
        abort(400, data["error"])
    if data.get("preparing"):
        raise data["preparing"]  # 503, Retry-After
    return data, ask


def _filename(name: str, ask: Ask) -> str:
    period = ask.query.period
    return f"{ask.site.site_id}-{name}-{period.first}-{period.last}.csv"


@bp.get("/sites/<site_id>/reports/funnel.csv")
@bp.get("/share/<token>/reports/funnel.csv")
def funnel_csv(site_id: str):
    """The funnel's steps; with ?funnel_breakdown=, its visits and visitors per step by each value."""
    data, ask = _data("funnels", "funnel")
    if data["funnel"] is None:
        abort(404, _("this site has no funnel yet"))
    report = data["report"]
    if "breakdown" in report:
        rows = [{"value": row["value"], **{f"step_{i}_visits": n for i, n in enumerate(row["visits"], 1)},
                 **{f"step_{i}_visitors": n for i, n in enumerate(row["visitors"] or [None] * len(row["visits"]), 1)},
                 "conversion_rate_percent": row["conversion_rate"]} for row in report["breakdown"]["rows"]]
        return csv_download(rows, _filename("funnel", ask), {"value": data["breakdown"]})
    rows = [{"step": s["step"], "label": s["label"], "visits": s["visits"], "visitors": s["visitors"],
             "continued": s["continued"],
             "dropped_off": s["dropped"], "dropped_off_percent": s["dropped_share"],
             "conversion_from_previous_percent": s["conversion_from_previous"],
             "conversion_from_first_percent": s["conversion_from_first"],
             "median_seconds_from_previous": s["median_seconds_from_previous"]} for s in report["steps"]]
    return csv_download(rows, _filename("funnel", ask))


@bp.get("/sites/<site_id>/reports/paths.csv")
@bp.get("/share/<token>/reports/paths.csv")
def paths_csv(site_id: str):
    data, ask = _data("journeys", "paths", limit=MAX_LIMIT)
    report = data["report"]
    rows = [{"path": " → ".join(p["pages"] + (["(left)"] if p["ended"] else [])), "visits": p["visits"],
             "share_percent": p["share"]} for p in report["paths"]]
    if report["other_paths"]:
        rows.append({"path": "(other paths)", "visits": report["other_paths"], "share_percent": None})
    return csv_download(rows, _filename(f"paths-{data['length']}", ask))


@bp.get("/sites/<site_id>/reports/page_flow.csv")
@bp.get("/share/<token>/reports/page_flow.csv")
def page_flow_csv(site_id: str):
    data, ask = _data("journeys", "page_flow", limit=MAX_LIMIT)
    flow = data.get("flow") or {"previous": [], "next": []}
    rows = [{"page": data["page"], "direction": direction, "other_page": row["page"], "views": row["views"],
             "share_percent": row["share"]}
            for direction, key in (("came from", "previous"), ("went to", "next")) for row in flow[key]]
    return csv_download(rows, _filename("page_flow", ask))


@bp.get("/sites/<site_id>/reports/cohorts.csv")
@bp.get("/share/<token>/reports/cohorts.csv")
def cohorts_csv(site_id: str):
    data, ask = _data("retention", "cohorts")
    period = data["period"]
    rows = [{"cohort": row["cohort"], "visitors": row["visitors"],
             **{f"{period}_{cell['offset']}_{what}": cell[key] for cell in row["retention"]
                for what, key in (("visitors", "visitors"), ("percent", "share"))}}
            for row in data["table"]["cohorts"]]
    return csv_download(rows, f"{ask.site.site_id}-cohorts-{period}-{local_today(ask.site.timezone, ask.now)}.csv")
