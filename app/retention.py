"""The single box's retention schedule: a daemon thread that purges expired data."""
from __future__ import annotations

import threading

from flask import Flask


def start_retention_thread(app: Flask) -> threading.Thread:
    interval = app.config["RETENTION_INTERVAL_S"]
    store, clock = app.extensions["liveinsight.store"], app.extensions["liveinsight.clock"]
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(interval):
            try:
                deleted = store.purge(clock.now_ms())
                app.logger.info("retention purge: %s", deleted)
            except Exception:  # keep the schedule alive; the next round retries
                app.logger.exception("retention purge failed")

    thread = threading.Thread(target=run, name="liveinsight-retention", daemon=True)
    thread.stop = stop  # type: ignore[attr-defined]
    thread.start()
    return thread
