"""LiveInsight: real-time web analytics. `create_app()` is the application factory."""
from __future__ import annotations

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from app.clock import SystemClock
from app.config import Config
from app.store import open_store


def create_app(config: dict | None = None, *, store=None, clock=None) -> Flask:
    app = Flask(__name__, template_folder="../templates", static_folder="../static")
    app.config.from_object(Config)
    app.config.update(config or {})
    app.json.sort_keys = False

    app.extensions["liveinsight.store"] = store or open_store(app.config["STORE_URL"])
    app.extensions["liveinsight.clock"] = clock or SystemClock()

    from app.api.views import bp as api_bp
    from app.dashboard import bp as dashboard_bp
    from app.cli import register_commands

    app.register_blueprint(api_bp)
    app.register_blueprint(dashboard_bp)
    register_commands(app)
    _register_error_handlers(app)
    return app


def _register_error_handlers(app: Flask) -> None:
    from app.store.base import StoreError

    def wants_json() -> bool:
        return request.path.startswith("/api/")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if not wants_json():
            return error
        response = jsonify(status="error", message=error.description)
        return response, error.code

    @app.errorhandler(StoreError)
    def store_error(error: StoreError):
        # Storage is unavailable: nothing was half-written, so the client should retry.
        app.logger.error("store error: %s", error)
        response = jsonify(status="error", message="storage is temporarily unavailable, retry later")
        response.headers["Retry-After"] = "5"
        return response, 503
