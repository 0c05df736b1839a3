"""GET /healthz: whether this server and its store answer, for a reverse proxy, a load
balancer or monitoring. It says nothing else (no version, no path, no error detail)."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from app.context import get_store
from app.store.base import StoreError

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    try:
        get_store().check()
    except StoreError as error:
        current_app.logger.error("health check: the store does not answer: %s", error)
        return jsonify(status="error", message="the store does not answer"), 503
    return jsonify(status="ok")
