"""The server's log, as a self-hoster reads it (journalctl, or the terminal of `make run`): one
line per request with its method, path, status and time, and every line about a request,
errors and their tracebacks included, tagged with that request's id. The id is also the
answer's X-Request-Id header and is shown on an error page, so "reference 3f2a9c1d0b7e4a65"
from a user leads to the log lines of that request.

What a line leaves out, for privacy and because logs are kept and copied: the client's address,
the query string (a setup token rides in it), and tokens in paths (a public link's
/share/<token> is logged as that pattern). Successful health checks are not logged: a proxy
or a monitor asks every few seconds, and only a failing one is news.
"""
from __future__ import annotations

import logging
import re
import secrets
import sys
import time

from flask import Flask, Response, g, has_request_context, request

log = logging.getLogger("app.requests")

FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
# An id a trusted proxy sent (Caddy's {http.request.uuid}, a load balancer's trace id) is kept
# when it looks like one; anything else, and every id when no proxy is trusted, is made here.
FORWARDED_ID = re.compile(r"[A-Za-z0-9._:-]{8,128}")
SECRET_ARGS = ("token",)  # path arguments logged as their pattern, never their value
QUIET_ENDPOINTS = ("health.healthz",)


class _RequestIdFilter(logging.Filter):
    """Tags every record with the id of the request it was written in ("-" outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


def configure_logging() -> None:
    """The `app` loggers write INFO and above to stderr, once per process however many apps
    are made (tests make many). Flask adds no handler of its own when one is there."""
    logger = logging.getLogger("app")
    if not any(isinstance(f, _RequestIdFilter) for h in logger.handlers for f in h.filters):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.addFilter(_RequestIdFilter())
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def set_up_request_log(app: Flask) -> None:
    configure_logging()
    trust_forwarded_id = app.config["PROXIES"] > 0
    access_log = app.config["ACCESS_LOG"]

    # A URL value preprocessor of the app runs before anything else that may answer: a
    # blueprint's preprocessor refusing an unknown public link, or any before_request.
    @app.url_value_preprocessor
    def start(endpoint, values) -> None:
        g.request_started = time.perf_counter()
        forwarded = request.headers.get("X-Request-Id", "") if trust_forwarded_id else ""
        g.request_id = forwarded if FORWARDED_ID.fullmatch(forwarded) else secrets.token_hex(8)

    @app.after_request
    def finish(response: Response) -> Response:
        request_id = g.get("request_id")
        if request_id is None:  # answered before start() could run: nothing in the app does that
            return response
        response.headers["X-Request-Id"] = request_id
        if access_log and not (request.endpoint in QUIET_ENDPOINTS and response.status_code < 400):
            elapsed_ms = (time.perf_counter() - g.request_started) * 1000
            log.info("%s %s %d %.1f ms", request.method, logged_path(), response.status_code, elapsed_ms)
        return response


def logged_path() -> str:
    """The request's path, with secret path arguments replaced by their pattern."""
    rule = request.url_rule
    if rule is not None and rule.arguments.intersection(SECRET_ARGS):
        return rule.rule
    return request.path
