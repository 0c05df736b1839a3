"""The dashboard: a page of widgets, each also served alone as an htmx-polled fragment.

Every widget URL answers with the whole page when the request is not from htmx, so each
works without JavaScript (and can be bookmarked).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, send_file, url_for

from app.analytics import realtime as rt
from app.auth.access import check_site_access, current_user, login_required, open_public_link
from app.auth.users import sites_of
from app.auth.views import no_users_yet
from app.context import get_store, now_ms
from app.store.base import Site, Store

bp = Blueprint("dashboard", __name__)
# Site pages (any URL with a site_id, or a /share/<token> one) check who asks before the view.
bp.url_value_preprocessor(open_public_link)
bp.before_request(check_site_access)

TRACKER_FILE = Path(__file__).resolve().parents[2] / "tracker" / "dist" / "liveinsight.min.js"
TRACKER_MAX_AGE_S = 3600  # short enough that a tracker update reaches sites within the hour


@dataclass(frozen=True)
class Widget:
    template: str
    poll_seconds: int
    data: Callable[[Store, Site, int], dict]


def _chart_24h(store: Store, site: Site, now: int) -> dict:
    series = rt.last_24_hours(store, site, now)
    zone = ZoneInfo(site.timezone)
    series["labels"] = [datetime.fromtimestamp(h / 1000, zone).strftime("%H:00") for h in series["hours"]]
    return {"series": series}


WIDGETS: dict[str, Widget] = {
    "current-visitors": Widget("partials/_current_visitors.html", 3,
                               lambda s, site, now: {"current": rt.current_visitors(s, site, now)}),
    "live-pages": Widget("partials/_live_pages.html", 5,
                         lambda s, site, now: {"pages": rt.live_pages(s, site, now)}),
    "live-sources": Widget("partials/_live_sources.html", 5,
                           lambda s, site, now: {"sources": rt.live_sources(s, site, now)}),
    "live-feed": Widget("partials/_live_feed.html", 3,
                        lambda s, site, now: {"feed": rt.live_feed(s, site)}),
    "conversions": Widget("partials/_live_conversions.html", 5,
                          lambda s, site, now: {"live": rt.conversions_live(s, site, now)}),
    "visitors-24h": Widget("partials/_visitors_24h.html", 30, _chart_24h),
    "top-pages": Widget("partials/_top_pages.html", 30,
                        lambda s, site, now: {"top_pages": rt.top_pages_today(s, site, now)}),
}


def switchable_sites() -> list[Site]:
    """The other sites the top bar offers: the user's, none through a public link."""
    user = current_user()
    return sites_of(get_store(), user) if user and g.get("public_link") is None else []


def _widget_context(site: Site, name: str, now: int) -> dict:
    widget = WIDGETS[name]
    return {"widget_name": name, "poll_seconds": widget.poll_seconds, "now": now,
            **widget.data(get_store(), site, now)}


def _render_dashboard(site: Site):
    now = now_ms()
    widgets = {name: _widget_context(site, name, now) for name in WIDGETS}
    return render_template("pages/dashboard.html", site=site, widgets=widgets, WIDGETS=WIDGETS,
                           now=now, sites=switchable_sites())


@bp.app_template_filter("ago")
def ago(elapsed_ms: int) -> str:
    """A short, human "how long ago": 4s ago, 12m ago, 3h ago."""
    seconds = max(0, int(elapsed_ms) // 1000)
    if seconds < 60:
        return f"{seconds}s ago"
    if seconds < 3600:
        return f"{seconds // 60}m ago"
    return f"{seconds // 3600}h ago"


@bp.get("/")
def index():
    if no_users_yet():
        return redirect(url_for("auth.setup"))
    return _sites()


@login_required
def _sites():
    store, user = get_store(), current_user()
    sites = sites_of(store, user)
    invitations = [(i, site) for i in store.email_invitations(user.email) if (site := store.get_site(i.site_id))]
    if len(sites) == 1 and not invitations:
        return redirect(url_for("dashboard.site_dashboard", site_id=sites[0].site_id))
    return render_template("pages/sites.html", sites=sites, invitations=invitations)


@bp.get("/sites/<site_id>")
@bp.get("/share/<token>")
def site_dashboard(site_id: str):
    return _render_dashboard(g.site)


def partial_or_page(render_partial: Callable[[], str], render_page: Callable[[], str]):
    """A widget's own partial for an htmx request and the whole page otherwise, so every
    widget URL also works without JavaScript."""
    htmx = request.headers.get("HX-Request") == "true"
    response = current_app.make_response(render_partial() if htmx else render_page())
    response.headers["Vary"] = "HX-Request"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/sites/<site_id>/widgets/<name>")
@bp.get("/share/<token>/widgets/<name>")
def widget(site_id: str, name: str):
    site = g.site
    if name not in WIDGETS:
        abort(404, f"no widget {name!r}")
    return partial_or_page(
        lambda: render_template(WIDGETS[name].template, site=site, w=_widget_context(site, name, now_ms())),
        lambda: _render_dashboard(site))


@bp.get("/tracker.js")
def tracker_js():
    response = send_file(TRACKER_FILE, mimetype="text/javascript", max_age=TRACKER_MAX_AGE_S)
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.get("/demo", defaults={"page": "home"})
@bp.get("/demo/<page>")
def demo(page: str):
    """A small fake site carrying the tracker snippet, to watch a visit arrive live."""
    if page not in ("home", "pricing", "blog"):
        abort(404)
    site = get_store().get_site(current_app.config["DEMO_SITE_ID"])
    if site is None:
        abort(404, "no demo site yet: run `flask --app app seed-demo` (make run does it)")
    return render_template("pages/demo.html", site=site, page=page)


@bp.app_template_filter("duration")
def duration(seconds: float | None) -> str:
    """127.4 -> "2m 7s"; None -> "—"."""
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60}m"


@bp.app_template_filter("number")
def number(value: float | None) -> str:
    """12345 -> "12,345"; None -> "—"."""
    if value is None:
        return "—"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


EMPTY_LABELS = {"source": "Direct", "country": "Unknown"}


@bp.app_template_filter("dimension_label")
def dimension_label(value: str, dimension: str) -> str:
    """What an empty dimension value means to a reader."""
    return value if value else EMPTY_LABELS.get(dimension, "(none)")


@bp.app_template_filter("datetime")
def local_datetime(ms: int, timezone: str) -> str:
    """Epoch milliseconds as the site's local date and time."""
    return datetime.fromtimestamp(ms / 1000, ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")
