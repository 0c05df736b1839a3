"""The current app's store, clock, report budget and alert notifier, for views, commands and the
background."""
from __future__ import annotations

from flask import Flask, current_app

from app.analytics.summaries import within
from app.store.base import Store


def get_store() -> Store:
    return current_app.extensions["liveinsight.store"]


def now_ms() -> int:
    return current_app.extensions["liveinsight.clock"].now_ms()


def report_budget():
    """Within it, a funnel or journey report stops making month digests after REPORT_BUDGET_S
    and raises summaries.Preparing (what it made is kept)."""
    return within(current_app.config["REPORT_BUDGET_S"])


def notifier_of(app: Flask):
    """What sends the app's alerts (app/alerts/notify.py), made on first use: a Lambda cold
    start, which imports the app package, loads no alert code. A deployment may add channels
    of its own ("liveinsight.notifier_channels": app/lambda_handlers.py adds SES and SNS)."""
    if "liveinsight.notifier" not in app.extensions:
        from app.alerts.notify import Notifier
        notifier = Notifier.from_config(app.config)
        with_channels = app.extensions.get("liveinsight.notifier_channels")
        app.extensions["liveinsight.notifier"] = with_channels(notifier) if with_channels else notifier
    return app.extensions["liveinsight.notifier"]
