"""The retention job: month rollups, then deleting what is past retention. On the single box
a daemon thread runs it (every RETENTION_INTERVAL_S); on AWS the hourly schedule function."""
from __future__ import annotations

import threading

from flask import Flask

from app.analytics.rollups import roll_up_site
from app.store.base import Store


def run_retention(store: Store, now_ms: int) -> dict:
    """Roll up the months that are due (every site), then purge; returns what each did."""
    rolled_up = {site.site_id: months for site in store.list_sites()
                 if (months := roll_up_site(store, site, now_ms))}
    return {"rolled_up_months": rolled_up, "deleted": store.purge(now_ms)}


def start_retention_thread(app: Flask) -> threading.Thread:
    interval = app.config["RETENTION_INTERVAL_S"]
    store, clock = app.extensions["liveinsight.store"], app.extensions["liveinsight.clock"]
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(interval):
            try:
                app.logger.info("retention: %s", run_retention(store, clock.now_ms()))
            except Exception:  # keep the schedule alive; the next round retries
                app.logger.exception("retention failed")

    thread = threading.Thread(target=run, name="liveinsight-retention", daemon=True)
    thread.stop = stop  # type: ignore[attr-defined]
    thread.start()
    return thread
