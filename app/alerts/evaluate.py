"""When alerts fire: every minute for every site that has rules (traffic, silence, and the goal
rules again), and right after a fold for the sites it touched (goal rules: "reached" within
seconds of the event). An alert is kept with a key that names its rule and period
(`store.add_alert`), so of several processes that find it due at once, one sends it.

The single box runs `AlertLoop` in the process that leads the store; AWS runs
`minute_alerts` from the every-minute schedule function and `fold_alerts` in the stream
function after each batch (app/lambda_handlers.py). The weekly and monthly reports
(reports.py) ride on the every-minute run, kept and sent the same way.
"""
from __future__ import annotations

import functools
import logging
import queue
import threading
from typing import Callable, Iterable

from app.analytics.realtime import live_counts
from app.store.base import Alert, Site, Store

from . import messages
from .fired import not_added, remember
from .goal_rules import check_reached, check_silence
from .notify import Notifier
from .reports import due_reports, send_report
from .settings import AlertSettings, goal_name
from .traffic import WINDOW_MS, check_traffic

log = logging.getLogger(__name__)

MINUTE_MS = 60_000


def site_alerts(store: Store, site: Site, now_ms: int, *, every_minute: bool = True) -> list[Alert]:
    """The site's alerts due now that no one has added yet: added, for the caller to deliver.
    Without `every_minute`, only the "reached" goal rules (after a fold)."""
    settings = AlertSettings.of(site)

    @functools.cache
    def fired() -> list[Alert]:
        """What fired on the site lately: read once, and only when something is due."""
        return store.list_alerts(site.site_id, 50)
    due: list[Alert] = []
    if every_minute and settings.traffic.enabled:
        due += _traffic(store, site, settings, now_ms, fired)
    for rule in settings.goal_rules:
        if rule.kind == "reached":
            name = goal_name(site, rule.goal)
            check = check_reached(store, site, rule, now_ms) if name else None  # None: its goal was deleted
            if check and check.due:
                due.append(messages.goal_alert(site, rule, name, check, now_ms))
        elif every_minute:
            check = check_silence(store, site, rule, now_ms)
            if check.due:
                due.append(messages.silence_alert(site, rule, check, now_ms))
    new = not_added(store, site, [alert.key for alert in due], fired)
    added = []
    for alert in (alert for alert in due if alert.key in new):
        if settings.muted(now_ms):
            alert.details["muted_until_ms"] = settings.muted_until_ms
        if store.add_alert(alert):
            added.append(alert)
        remember(store, site, alert.key)
    return added


def _traffic(store: Store, site: Site, settings: AlertSettings, now_ms: int,
             fired: Callable[[], list[Alert]]) -> list[Alert]:
    check = check_traffic(store, site, settings.traffic, now_ms)
    if check.direction is None:
        return []
    cooling = now_ms - settings.traffic.cooldown_h * 3_600_000
    if any(a.kind == check.direction and a.fired_ms > cooling for a in fired()):
        return []
    with store.one_moment():  # a store may read what both share once (DynamoDB: the minute's live item)
        pages, sources = (live_counts(store, site.site_id, now_ms, dimension, WINDOW_MS)
                          for dimension in ("live_page", "live_source"))
    return [messages.traffic_alert(site, check, pages, sources, now_ms)]


def minute_alerts(store: Store, now_ms: int) -> list[tuple[Site, Alert]]:
    """Every site's alerts and reports due this minute (one site failing does not stop the others)."""
    sites = store.list_sites()
    fired = _each_site(store, (s for s in sites if AlertSettings.of(s).watches), now_ms, True)
    return fired + due_reports(store, now_ms, sites)


def fold_alerts(store: Store, site_ids: Iterable[str], now_ms: int) -> list[tuple[Site, Alert]]:
    """The "reached" goal alerts of the sites a fold touched."""
    sites = (site for site_id in site_ids if (site := store.get_site(site_id)) and AlertSettings.of(site).goal_rules)
    return _each_site(store, sites, now_ms, False)


def _each_site(store: Store, sites: Iterable[Site], now_ms: int, every_minute: bool) -> list[tuple[Site, Alert]]:
    fired = []
    for site in sites:
        try:
            fired += [(site, alert) for alert in site_alerts(store, site, now_ms, every_minute=every_minute)]
        except Exception:  # noqa: BLE001  (the next minute tries again; the other sites go on)
            log.exception("alerts of site %s could not be evaluated", site.site_id)
    return fired


def deliver_all(store: Store, notifier: Notifier, fired: list[tuple[Site, Alert]]) -> None:
    for site, alert in fired:
        log.warning("alert on site %s: %s", site.site_id, alert.title)
        try:
            if alert.kind == "report":  # to its own recipients, muted or not
                send_report(store, notifier, site, alert)
            else:
                notifier.deliver(store, site, alert)
        except Exception:  # noqa: BLE001  (kept in the history without deliveries; the rest go on)
            log.exception("alert %s of site %s could not be delivered", alert.key, site.site_id)


class AlertLoop:
    """The single box's alerts, in the process that leads the store: every minute, and for the
    sites the aggregator just folded (`touched`). Sending happens on a thread of its own, so a
    slow mail server or a webhook's retries never hold back the next evaluation."""

    def __init__(self, store: Store, clock, notifier: Notifier, stop: threading.Event):
        self.store, self.clock, self.notifier, self.stop = store, clock, notifier, stop
        self.wake = threading.Event()
        self.lock = threading.Lock()
        self.pending: set[str] = set()
        self.outbox: queue.Queue = queue.Queue()

    def touched(self, site_ids: Iterable[str]) -> None:
        with self.lock:
            self.pending.update(site_ids)
        self.wake.set()

    def run(self) -> None:
        next_minute = (self.clock.now_ms() // MINUTE_MS + 1) * MINUTE_MS
        while not self.stop.is_set():
            self.wake.wait(min(1.0, max(0.0, (next_minute - self.clock.now_ms()) / 1000)))
            self.wake.clear()
            with self.lock:
                sites, self.pending = self.pending, set()
            now = self.clock.now_ms()
            try:
                if sites:
                    self._send(fold_alerts(self.store, sites, now))
                if now >= next_minute:
                    next_minute = (now // MINUTE_MS + 1) * MINUTE_MS
                    self._send(minute_alerts(self.store, now))
            except Exception:  # noqa: BLE001  (storage unavailable: the next minute tries again)
                log.exception("alerts could not be evaluated")

    def _send(self, fired: list[tuple[Site, Alert]]) -> None:
        for item in fired:
            self.outbox.put(item)

    def send_forever(self) -> None:
        while not self.stop.is_set():
            try:
                item = self.outbox.get(timeout=1.0)
            except queue.Empty:
                continue
            deliver_all(self.store, self.notifier, [item])
