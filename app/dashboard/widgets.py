"""The dashboard's widgets: one type for every page (overview, realtime, public links).

A widget is an id, a title, the template that draws it, the data it shows, how often it
refreshes and the page it is on (with that page's own query arguments). Its template is both
its piece of the page and the fragment htmx fetches again, so the two never differ. Live
widgets (the realtime page's) are refreshed together by one request that renders them all from
one moment (`Ask.live`), so two widgets never show different times.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

from app.analytics import goal_reports, realtime as rt, stats
from app.analytics.periods import Period, local_day_number, local_today
from app.api.schemas import ReportQuery
from app.i18n import lazy_gettext as _l
from app.ingest.enrich import DropReason
from app.store.base import Site, Store

from . import charts, journey_widgets as jw

LIVE_REFRESH_S = 5      # the realtime page's one tick
STRIP_REFRESH_S = 5     # the overview's "visitors now"
REPORT_REFRESH_S = 60   # reports move slowly: a minute is fresh enough and cheap


@dataclass(frozen=True)
class PageQuery:
    """The query of a page with arguments of its own (a funnel, a path length) beside the
    report's period and filters (`report`; None on a page without them). Every link and
    refresh built from it (report_url) keeps both."""
    report: ReportQuery | None
    own: dict[str, str]

    @property
    def period(self) -> Period | None:
        return self.report.period if self.report else None

    @property
    def filters(self) -> stats.Filters:
        return self.report.filters if self.report else stats.Filters()

    def args(self, **changes) -> dict:
        args = {**(self.report.args() if self.report else {}), **self.own, **changes}
        return {k: v for k, v in args.items() if v is not None}


@dataclass
class Ask:
    """What a widget is asked for: the site, the moment, and the report's query if any."""
    store: Store
    site: Site
    now: int
    query: ReportQuery | PageQuery | None = None

    @property
    def metric(self) -> str:
        """What the overview's chart draws (`metric=`): visitors unless asked."""
        return self.query.metric if self.query and self.query.metric else "visitors"

    @property
    def running(self) -> bool:
        """Whether the period is still going on (it holds today): its figures are not final."""
        period = self.query.period if self.query else None
        return period is not None and period.last >= local_today(self.site.timezone, self.now)

    @cached_property
    def live(self) -> dict:
        """Everything the live widgets show, read once for all of them."""
        return rt.realtime(self.store, self.site, self.now)


@dataclass(frozen=True)
class Widget:
    id: str
    title: str  # lazy (translated when shown), as are the tab labels in `options`
    template: str
    data: Callable[[Ask], dict]
    refresh_s: int = REPORT_REFRESH_S
    live: bool = False  # refreshed with the other live widgets, by the live snapshot
    options: dict = field(default_factory=dict)
    page: str = "overview"  # the endpoint of the page it is on: its URL without htmx shows that page
    params: tuple[str, ...] = ()  # the page's own query arguments, which it reads and keeps (PageQuery)
    report: bool = True  # whether it reads the report's period and filters


# -- report widgets: a period and filters
def _breakdown(dimension: str, filter_key: str | None = None, chart: str | None = None) -> Callable[[Ask], dict]:
    def data(ask: Ask) -> dict:
        q = ask.query
        return {"dimension": dimension, "filter_key": filter_key or dimension, "chart": chart,
                "table": stats.breakdown(ask.store, ask.site, q.period, dimension, q.filters, q.limit),
                "sources_changed_ms": sources_changed_within(ask.site, q.period) if dimension in NAMED_SOURCES else None}
    return data


NAMED_SOURCES = ("source", "channel")  # what ingest/sources.py names, by rules that may change


def sources_changed_within(site: Site, period: Period) -> int | None:
    """When the rules naming the site's sources changed, if the period holds days on both sides
    of it: visits counted before were named, and put in channels, by the older rules."""
    changed = site.sources_changed_ms
    if changed and period.first_day < local_day_number(site.timezone, changed) <= period.last_day:
        return changed
    return None


def _goal_table(name: str) -> Callable[[Ask], dict]:
    def data(ask: Ask) -> dict:
        q = ask.query
        context = {"table": goal_reports.table(ask.store, ask.site, q.period, name, q.filters, q.limit)}
        if name == "events" and (q.filters.goal or "").startswith("e:"):
            context["properties"] = goal_reports.event_properties(
                ask.store, ask.site, q.period, q.filters.goal[2:], q.limit)
        return context
    return data


def _report(widget_id: str, title: str, template: str, data: Callable[[Ask], dict], **options) -> Widget:
    return Widget(widget_id, title, f"widgets/{template}.html", data, options=options)


def _live(widget_id: str, title: str, template: str, data: Callable[[Ask], dict]) -> Widget:
    return Widget(widget_id, title, f"widgets/{template}.html", data, LIVE_REFRESH_S, live=True, page="realtime")


def _journey(widget_id: str, title: str, data: Callable[[Ask], dict], page: str, params: tuple[str, ...],
             report: bool = True) -> Widget:
    return Widget(widget_id, title, f"widgets/{widget_id.replace('-', '_')}.html", data, page=page,
                  params=params, report=report)


BREAKDOWNS = {  # id: (title, tab label, dimension, filter it sets, chart)
    "pages": (_l("Top pages"), _l("Pages"), "page", None, None),
    "entry": (_l("Entry pages"), _l("Entry"), "entry", "page", None),
    "exit": (_l("Exit pages"), _l("Exit"), "exit", "page", None),
    "sources": (_l("Sources"), _l("Sources"), "source", None, "donut"),
    "channels": (_l("Channels"), _l("Channels"), "channel", None, "donut"),
    "utm_campaign": (_l("Campaigns"), _l("Campaigns"), "utm_campaign", None, None),
    "utm_source": (_l("UTM sources"), _l("UTM source"), "utm_source", None, None),
    "utm_medium": (_l("UTM mediums"), _l("UTM medium"), "utm_medium", None, None),
    "countries": (_l("Countries"), _l("Countries"), "country", None, "map"),
    "devices": (_l("Devices"), _l("Devices"), "device", None, "donut"),
    "browsers": (_l("Browsers"), _l("Browsers"), "browser", None, None),
    "os": (_l("Operating systems"), _l("OS"), "os", None, None),
}
GOAL_TABLES = {  # id: (title, tab label, template)
    "goals": (_l("Goals and conversions"), _l("Goals"), "goals"),
    "events": (_l("Custom events"), _l("Events"), "events"),
    "outbound": (_l("Outbound links"), _l("Outbound links"), "links"),
    "downloads": (_l("File downloads"), _l("Downloads"), "links"),
    "not_found": (_l("Pages not found"), _l("Not found"), "links"),
}
# Why events were left out (the "Not counted" card): stats.DROP_REASONS in words a reader's
# language has (the protocols' own names stay as they are).
DROP_REASONS = {**stats.DROP_REASONS, DropReason.BOT.value: _l("Bots"), DropReason.SPAM.value: _l("Referrer spam"),
                DropReason.FAILED.value: _l("Could not be counted (set aside, see the server's log)")}

WIDGETS: dict[str, Widget] = {
    # the overview
    "live-strip": Widget("live-strip", _l("Visitors now"), "widgets/live_strip.html",
                         lambda a: {"current": rt.current_visitors(a.store, a.site, a.now)}, STRIP_REFRESH_S),
    "metrics": _report("metrics", _l("Top metrics"), "metrics",
                       lambda a: {"summary": stats.summary(a.store, a.site, a.query.period, a.query.filters),
                                  "metric": a.metric, "chartable": stats.CHART_METRICS, "running": a.running}),
    "chart": _report("chart", _l("Chart"), "chart", lambda a: {"chart": charts.main_chart(
        stats.timeseries(a.store, a.site, a.query.period, a.query.filters, now_ms=a.now, metric=a.metric), a.metric)}),
    **{name: _report(name, title, "breakdown", _breakdown(dimension, filter_key, chart), tab=tab)
       for name, (title, tab, dimension, filter_key, chart) in BREAKDOWNS.items()},
    **{name: _report(name, title, template, _goal_table(name), tab=tab)
       for name, (title, tab, template) in GOAL_TABLES.items()},
    "filtered": _report("filtered", _l("Not counted"), "filtered",
                        lambda a: {"filtered": stats.filtered(a.store, a.site, a.query.period),
                                   "reasons": DROP_REASONS}),
    # the realtime page
    "current-visitors": _live("current-visitors", _l("Visitors now"), "current_visitors",
                              lambda a: {"current": a.live["current_visitors"]}),
    "conversions": _live("conversions", _l("Conversions"), "conversions_live", lambda a: {"live": a.live["conversions"]}),
    "visitors-24h": _live("visitors-24h", _l("Last 24 hours"), "visitors_24h", lambda a: {"series": {
        **a.live["last_24_hours"], "labels": charts.hour_labels(a.live["last_24_hours"]["hours"], a.site.timezone)}}),
    "recent": _live("recent", _l("Last 100 minutes"), "recent",
                    lambda a: {"series": stats.last_100_minutes(a.store, a.site, a.now)}),
    "live-pages": _live("live-pages", _l("Pages being viewed now"), "live_pages", lambda a: {"pages": a.live["live_pages"]}),
    "live-sources": _live("live-sources", _l("Where current visitors came from"), "live_sources",
                          lambda a: {"sources": a.live["live_sources"]}),
    "top-pages": _live("top-pages", _l("Top pages today"), "top_pages", lambda a: {"top_pages": a.live["top_pages_today"]}),
    "live-feed": _live("live-feed", _l("What visitors are doing"), "live_feed", lambda a: {"feed": a.live["live_feed"]}),
    # the funnels, journeys and retention pages
    "funnel": _journey("funnel", _l("Funnel"), jw.funnel, "funnels", jw.FUNNEL_ARGS),
    "paths": _journey("paths", _l("Top paths"), jw.paths, "journeys", jw.JOURNEY_ARGS),
    "page-flow": _journey("page-flow", _l("Before and after a page"), jw.page_flow, "journeys", jw.JOURNEY_ARGS),
    "cohorts": _journey("cohorts", _l("Visitors who came back"), jw.cohorts, "retention", jw.RETENTION_ARGS,
                        report=False),
}


@dataclass(frozen=True)
class Panel:
    """A card of tabs on the overview, each tab a widget; one is drawn at a time."""
    id: str
    label: str  # lazy
    tabs: tuple[str, ...]


PANELS = (
    Panel("sources", _l("Traffic sources"), ("sources", "channels", "utm_campaign", "utm_source", "utm_medium")),
    Panel("pages", _l("Pages"), ("pages", "entry", "exit")),
    Panel("locations", _l("Locations"), ("countries",)),
    Panel("devices", _l("Devices"), ("devices", "browsers", "os")),
    Panel("goals", _l("Goals and events"), ("goals", "events", "outbound", "downloads", "not_found")),
)
OVERVIEW = ("live-strip", "metrics", "chart", *(tab for p in PANELS for tab in p.tabs), "filtered")
REALTIME = ("current-visitors", "conversions", "live-pages", "visitors-24h", "live-sources", "recent",
            "top-pages", "live-feed")
# The widgets of each page of journeys.py, by the page's endpoint.
JOURNEY_PAGES = {"funnels": ("funnel",), "journeys": ("paths", "page-flow"), "retention": ("cohorts",)}


def panel_tab(panel: Panel, asked: str | None) -> str:
    """The tab a panel shows: the one asked for (`<panel>_tab=`), else its first."""
    return asked if asked in panel.tabs else panel.tabs[0]


def render_data(widget: Widget, ask: Ask) -> dict:
    """What a widget's template receives as `w`."""
    return {"id": widget.id, "title": widget.title, "refresh_s": widget.refresh_s, "live": widget.live,
            "now": ask.now, **widget.options, **widget.data(ask)}
