"""The current app's store and clock, for views and commands."""
from __future__ import annotations

from flask import current_app

from app.store.base import Store


def get_store() -> Store:
    return current_app.extensions["liveinsight.store"]


def now_ms() -> int:
    return current_app.extensions["liveinsight.clock"].now_ms()
