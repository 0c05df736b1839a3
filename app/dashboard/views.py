"""The dashboard's pages: the sites list, each site's overview and realtime page, and every
widget alone as the fragment htmx fetches to refresh it.

A widget URL answers with its page when the request is not from htmx, so each works without
JavaScript and can be bookmarked.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

from flask import Blueprint, abort, current_app, g, jsonify, redirect, render_template, request, send_file, url_for
from marshmallow import ValidationError
from werkzeug.test import EnvironBuilder

from app.analytics import realtime as rt
from app.api.schemas import ReportQuery, parse_report_query
from app.auth import links
from app.auth.access import check_site_access, current_user, login_required, open_public_link, site_url
from app.auth.users import sites_of
from app.auth.views import no_users_yet
from app.context import get_store, now_ms
from app.i18n import gettext as _, language
from app.ingest.schema import describe
from app.store.base import Site

from . import first_run
from .widgets import PANELS, REALTIME, WIDGETS, Ask, PageQuery, Widget, panel_tab, render_data

bp = Blueprint("dashboard", __name__)
# Site pages (any URL with a site_id, or a /share/<token> one) check who asks before the view.
bp.url_value_preprocessor(open_public_link)
bp.before_request(check_site_access)

TRACKER_FILE = Path(__file__).resolve().parents[2] / "tracker" / "dist" / "liveinsight.min.js"
TRACKER_MAX_AGE_S = 3600  # short enough that a tracker update reaches sites within the hour


def switchable_sites() -> list[Site]:
    """The other sites the top bar offers: the user's, none through a public link."""
    user = current_user()
    return sites_of(get_store(), user) if user and g.get("public_link") is None else []


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
        return redirect(url_for("dashboard.overview", site_id=sites[0].site_id))
    now = now_ms()
    glance = {site.site_id: rt.at_a_glance(store, site, now) for site in sites}
    return render_template("pages/sites.html", sites=sites, glance=glance, invitations=invitations)


# -- a site's pages
def report_query(site: Site) -> ReportQuery:
    try:
        return parse_report_query(request.args.to_dict(), site, now_ms())
    except ValidationError as error:  # the schema's words are the JSON API's (English): the detail, kept as it is
        abort(400, _("This address asks for a report that cannot be shown: %(detail)s", detail=describe(error)))


def _ask(site: Site, with_query: bool) -> Ask:
    return Ask(get_store(), site, now_ms(), report_query(site) if with_query else None)


def widget_query(site: Site, widget: Widget) -> ReportQuery | PageQuery | None:
    """What a widget reads from the URL: nothing (live widgets), the report's period and
    filters, and its page's own arguments, which its refreshes keep."""
    if widget.live:
        return None
    report = report_query(site) if widget.report else None
    if not widget.params:
        return report
    return PageQuery(report, {name: request.args[name] for name in widget.params if request.args.get(name)})


def _widgets_data(ask: Ask, names: Iterable[str]) -> dict[str, dict]:
    """What each widget shows, read in one moment: a page's widgets read many figures of the
    same counters, which a store may then fetch once (`Store.one_moment`)."""
    with ask.store.one_moment():
        return {name: render_data(WIDGETS[name], ask) for name in names}


def _render_overview(site: Site):
    ask = _ask(site, with_query=True)
    # A site with no data yet teaches its members how to install the snippet; a public link
    # shows the (empty) reports.
    setup = first_run.status(ask.store, site, ask.now) if g.get("public_link") is None else None
    tabs = {panel.id: panel_tab(panel, request.args.get(f"{panel.id}_tab")) for panel in PANELS}
    shown = ("live-strip",) if setup and not setup.receiving else \
        ("live-strip", "metrics", "chart", *tabs.values(), "filtered")
    widgets = _widgets_data(ask, shown)
    return render_template("pages/overview.html", site=site, q=ask.query, widgets=widgets, WIDGETS=WIDGETS,
                           panels=PANELS, tabs=tabs, setup=setup, sites=switchable_sites())


STREAM_RETRY_MS = 2_000  # how soon a browser reconnects a stream that ended


def _render_realtime(site: Site):
    ask = _ask(site, with_query=False)
    widgets = _widgets_data(ask, REALTIME)
    return render_template("pages/realtime.html", site=site, widgets=widgets, WIDGETS=WIDGETS,
                           sites=switchable_sites())


@bp.get("/sites/<site_id>")
@bp.get("/share/<token>")
def overview(site_id: str):
    return _render_overview(g.site)


@bp.get("/sites/<site_id>/realtime")
@bp.get("/share/<token>/realtime")
def realtime(site_id: str):
    return _render_realtime(g.site)


@bp.get("/sites/<site_id>/reports")
@bp.get("/share/<token>/reports")
def reports(site_id: str):
    """Where reports used to be: bookmarks keep their period and filters."""
    return redirect(site_url("dashboard.overview", **request.args.to_dict()), 301)


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
    site, widget = g.site, WIDGETS.get(name)
    if widget is None:
        abort(404, _("no widget %(name)s", name=repr(name)))
    page = current_app.view_functions[f"dashboard.{widget.page}"]
    return partial_or_page(lambda: _render_widget(name, Ask(get_store(), site, now_ms(), widget_query(site, widget))),
                           lambda: page(site_id=site_id))


def _render_widget(name: str, ask: Ask) -> str:
    return render_template(WIDGETS[name].template, site=ask.site, q=ask.query, w=render_data(WIDGETS[name], ask))


@bp.get("/sites/<site_id>/live")
@bp.get("/share/<token>/live")
def live(site_id: str):
    """Every live widget at once, from one moment, each swapped into its place by id."""
    return partial_or_page(lambda: _live_snapshot(g.site), lambda: _render_realtime(g.site))


def _live_snapshot(site: Site) -> str:
    ask = _ask(site, with_query=False)
    widgets = {name: {**data, "oob": True} for name, data in _widgets_data(ask, REALTIME).items()}
    return render_template("pages/live_snapshot.html", site=site, WIDGETS=WIDGETS, widgets=widgets)


@bp.get("/sites/<site_id>/live/stream")
@bp.get("/share/<token>/live/stream")
def live_stream(site_id: str):
    """The live snapshot now, as the first event of a stream the server then keeps open and
    feeds as events are folded (app/live_push.py). Only where the server pushes (LIVE_PUSH: the
    single box); elsewhere the page polls `live`."""
    if not current_app.config.get("LIVE_PUSH"):
        abort(404, _("this server does not push: the page polls"))
    from app.live_push import STREAM_HEADER, snapshot_event, stream_header  # the single box's (not on Lambda)
    body = snapshot_event(_live_snapshot(g.site), retry_ms=STREAM_RETRY_MS)
    return current_app.response_class(body, mimetype="text/event-stream", headers={
        "Cache-Control": "no-store", "X-Accel-Buffering": "no",
        STREAM_HEADER: stream_header(g.site.site_id, g.get("share_token"), language())})


@bp.get("/sites/<site_id>/live/socket")
@bp.get("/share/<token>/live/socket")
def live_socket(site_id: str):
    """Where the realtime page connects for pushes on AWS (app/live_sockets.py): the WebSocket
    API's URL with a ticket that lets this member, or this public link, in for a minute."""
    from app.live_sockets import LINK_VIEWER, ticket
    url = current_app.config.get("LIVE_SOCKET_URL")
    if not url:
        abort(404, _("this server has no WebSocket API: the page polls"))
    link = g.get("public_link")
    viewer = LINK_VIEWER + link.token_hash if link is not None else current_user().user_id
    return jsonify({"url": f"{url}?ticket={ticket(current_app.config['SECRET_KEY'], g.site.site_id, viewer, language())}"})


def live_snapshot_for(app, site_id: str, token: str | None, language: str | None = None) -> str | None:
    """What a stream pushes, rendered outside any viewer's request, as `live` renders it for a
    member (token None) or through the public link `token`, in `language` (app.i18n.LANGUAGES;
    None: the default); None when the site or the link is gone."""
    path = f"/share/{token}/live" if token else f"/sites/{site_id}/live"
    headers = {"HX-Request": "true", **({"Accept-Language": language} if language else {})}
    # Werkzeug's builder, not app.test_request_context's: Flask's imports click.testing, which
    # the Lambda package leaves out.
    with app.request_context(EnvironBuilder(path, headers=headers).get_environ()):
        site = get_store().get_site(site_id)
        link = links.resolve(get_store(), token) if token else None
        if site is None or (token and (link is None or link.site_id != site_id)):
            return None
        g.site, g.role, g.public_link, g.share_token = site, "viewer", link, token
        return _live_snapshot(site)


@bp.get("/sites/<site_id>/install-check")
@bp.get("/share/<token>/install-check")
def install_check(site_id: str):
    """The first run's "waiting for the first page view" line, polled until events arrive."""
    site = g.site
    return partial_or_page(
        lambda: render_template("widgets/install_check.html", site=site,
                                setup=first_run.status(get_store(), site, now_ms())),
        lambda: _render_overview(site))


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
        abort(404, _("no demo site yet: run %(command)s (make run does it)", command="`flask --app app seed-demo`"))
    return render_template("pages/demo.html", site=site, page=page)
