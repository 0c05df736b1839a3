"""A new site's first run: its snippet, and whether its events have started to arrive."""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, url_for

from app.analytics.periods import local_day_number
from app.store.base import Site, Store
from app.store.records import ROLLUP_RETENTION_DAYS


@dataclass(frozen=True)
class Setup:
    receiving: bool  # any event stored, now or within the statistics kept
    snippet: str


def snippet(site: Site) -> str:
    """The one line a site owner pastes into every page: tracker.js from the tracker's own
    address when there is one (TRACKER_URL), else from this app's."""
    base = current_app.config["TRACKER_URL"].rstrip("/")
    source = f"{base}/tracker.js" if base else url_for("dashboard.tracker_js", _external=True)
    return f'<script defer src="{source}" data-key="{site.tracker_key}"></script>'


def status(store: Store, site: Site, now_ms: int) -> Setup:
    return Setup(receiving=has_data(store, site, now_ms), snippet=snippet(site))


def has_data(store: Store, site: Site, now_ms: int) -> bool:
    """An event in the log (the first one shows before it is folded), or page views counted
    within the 13 months statistics are kept."""
    if store.recent_events(site.site_id, 1):
        return True
    today = local_day_number(site.timezone, now_ms)
    counted = store.sum_counters(site.site_id, "pageviews", "", today - ROLLUP_RETENTION_DAYS, today + 1, "day")
    return any(n > 0 for n in counted.values())
