"""The current app's store, clock and alert notifier, for views, commands and the background."""
from __future__ import annotations

from flask import Flask, current_app

from app.store.base import Store


def get_store() -> Store:
    return current_app.extensions["liveinsight.store"]


def now_ms() -> int:
    return current_app.extensions["liveinsight.clock"].now_ms()


def notifier_of(app: Flask):
    """What sends the app's alerts (app/alerts/notify.py), made on first use: a Lambda cold
    start, which imports the app package, loads no alert code."""
    if "liveinsight.notifier" not in app.extensions:
        from app.alerts.notify import Notifier
        app.extensions["liveinsight.notifier"] = Notifier.from_config(app.config)
    return app.extensions["liveinsight.notifier"]
