"""LiveInsight: real-time web analytics. `create_app()` is the application factory."""
from __future__ import annotations

from flask import Flask, abort, jsonify, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from app.auth.sites import SitesByKey
from app.clock import SystemClock
from app.config import Config
from app.i18n import gettext as _, lazy_gettext as _l
from app.store import open_store

csrf = CSRFProtect()


def create_app(config: dict | None = None, *, store=None, clock=None) -> Flask:
    settings = {**Config.settings(), **(config or {})}
    app = Flask(__name__, template_folder="../templates", static_folder="../static",
                instance_path=settings["INSTANCE_PATH"])
    app.config.update(settings)
    app.json.sort_keys = False

    app.extensions["liveinsight.store"] = store or open_store(app.config["STORE_URL"])
    app.extensions["liveinsight.clock"] = clock or SystemClock()
    app.extensions["liveinsight.sites_by_key"] = SitesByKey()

    from app.api.views import bp as api_bp
    from app.auth.views import bp as auth_bp
    from app.dashboard import bp as dashboard_bp
    from app.health import bp as health_bp
    from app.cli import register_commands
    from app.i18n import set_up_i18n
    from app.limits import set_up_rate_limits
    from app.request_log import set_up_request_log
    from app.security import set_up_security

    set_up_request_log(app)  # its id and clock start before any other check can answer
    _set_up_sessions(app)
    set_up_i18n(app)
    set_up_security(app)
    app.register_blueprint(api_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(dashboard_bp)
    app.register_blueprint(health_bp)
    csrf.exempt(api_bp)  # the JSON API authenticates by key (or reads only), not by cookie
    set_up_rate_limits(app)
    _serve(app, settings["SERVES"])
    register_commands(app)
    _register_error_handlers(app)
    return app


# What the snippet uses: a tracker-only front door (the tracker function on AWS) answers these.
TRACKER_ENDPOINTS = frozenset({"dashboard.tracker_js", "api.collect_events", "api.preflight_events",
                               "health.healthz"})


def _serve(app: Flask, serves: str) -> None:
    """SERVES="tracker": every other path is not found here, so the public, unauthenticated
    tracker door never opens the dashboard, whose cookies belong to the dashboard's address."""
    if serves not in ("all", "tracker"):
        raise ValueError(f"LIVEINSIGHT_SERVES is 'all' or 'tracker', not {serves!r}")
    if serves == "tracker":
        @app.before_request
        def tracker_only():
            if request.endpoint not in TRACKER_ENDPOINTS:
                abort(404)


def _set_up_sessions(app: Flask) -> None:
    """Signed-cookie logins and CSRF tokens on every state-changing request (forms send a
    hidden field, htmx the X-CSRFToken header set on <body>)."""
    from app.auth import access
    from app.auth.session import SessionInterface, ensure_secret_key

    ensure_secret_key(app)
    app.session_interface = SessionInterface()
    csrf.init_app(app)
    app.jinja_env.globals.update(current_user=access.current_user, site_url=access.site_url, can=access.can,
                                 csrf_field=access.csrf_field)


# The error page's heading (the JSON API answers with the description only, in English).
ERROR_TITLES = {400: _l("That request did not make sense"), 403: _l("You cannot open this page"),
                404: _l("Page not found"), 405: _l("That is not allowed here"), 429: _l("Too many requests"),
                500: _l("Something went wrong on our side")}


# What the error page says when the error came with Werkzeug's own English description (a bare
# abort(404), a method not allowed), or from Flask-WTF's CSRF check.
DEFAULT_MESSAGES = {400: _l("The server could not understand this request."),
                    403: _l("You do not have access to this page."),
                    404: _l("There is no page at this address. Check it, or go back to your sites."),
                    405: _l("This page cannot be used that way."),
                    500: _l("The error was logged. Try again in a moment.")}
CSRF_MESSAGE = _l("This form has expired or did not come from this site's page: reload the page and send it again.")


def _page_message(error: HTTPException) -> str:
    """The error's description for a page: the app's own as it was written (translated where
    it was raised), Werkzeug's and Flask-WTF's defaults in the page's language."""
    if isinstance(error, CSRFError):
        return str(CSRF_MESSAGE)
    if error.description == type(error).description and error.code in DEFAULT_MESSAGES:
        return str(DEFAULT_MESSAGES[error.code])
    return error.description


def _register_error_handlers(app: Flask) -> None:
    from app.analytics.summaries import Preparing
    from app.store.base import StoreError

    def wants_json() -> bool:
        return request.path.startswith("/api/")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if error.code == 429:
            return too_many_requests(error)
        if not wants_json():
            page = render_template("pages/error.html", status=error.code, message=_page_message(error),
                                   title=ERROR_TITLES.get(error.code, error.name))
            headers = [h for h in error.get_headers() if h[0] != "Content-Type"]  # Allow: on a 405
            return app.response_class(page, status=error.code, headers=headers, mimetype="text/html")
        response = jsonify(status="error", message=error.description)
        return response, error.code

    def too_many_requests(error: HTTPException):
        wait = getattr(error, "retry_after", None) or 60  # app/limits.py: seconds to the window's end
        # the description is the limit itself ("10 per 1 minute"), as the setting writes it
        if wants_json():  # the API's answers stay English
            response = jsonify(status="error",
                               message=f"too many requests (at most {error.description}): retry in {wait} s")
        else:
            message = _("too many requests (at most %(limit)s): retry in %(wait)s s",
                        limit=error.description, wait=wait)
            response = app.response_class(render_template("pages/error.html", status=429, message=message,
                                                          title=ERROR_TITLES[429]), mimetype="text/html")
        response.status_code = 429
        response.headers["Retry-After"] = str(wait)
        return response

    @app.errorhandler(Preparing)
    def preparing(error: Preparing):
        # A report's history is still being made into digests (kept as they are made): asked
        # again in a moment, it goes on from where this request stopped.
        if wants_json():
            response = jsonify(status="error", message=f"{error}: retry in {error.retry_s} s")
        else:
            message = _("This report is being prepared from its history: %(done)s of %(total)s months done. "
                        "Try again in a moment.", done=error.done, total=error.total)
            response = app.response_class(render_template("pages/error.html", status=503, message=message,
                                                          title=_("Almost ready")), mimetype="text/html")
        response.status_code = 503
        response.headers["Retry-After"] = str(error.retry_s)
        return response

    @app.errorhandler(StoreError)
    def store_error(error: StoreError):
        # Storage is unavailable: nothing was half-written, so the client should retry.
        app.logger.error("store error: %s", error)
        response = jsonify(status="error", message="storage is temporarily unavailable, retry later")
        response.headers["Retry-After"] = "5"
        return response, 503
