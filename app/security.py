"""Headers that make browsers enforce what the app promises, and trusting a reverse proxy.

- Content-Security-Policy: scripts, styles, images and requests from this origin only (and, on
  AWS, the realtime page's WebSocket API: LIVE_SOCKET_URL), no
  inline script or style (the dashboard has none: charts read data attributes), no plugins, no
  <base> rewriting, forms post here. So even a string a stranger sent that escaped escaping
  could not run.
- frame-ancestors 'none' (and X-Frame-Options: DENY) everywhere but the public-link views,
  which owners may embed in an iframe.
- Referrer-Policy: same-origin: a public link's token, which is in its URL, never leaves in a
  Referer header; same-origin form posts keep theirs (CSRF checks use it over HTTPS).
- HSTS, over HTTPS only (directly, or through a proxy counted in LIVEINSIGHT_PROXIES).
- Cache-Control: no-store on every answer but static assets and the tracker, so no browser
  cache or proxy keeps figures, settings or a secret shown once.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, request
from werkzeug.middleware.proxy_fix import ProxyFix

POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
          "connect-src 'self'{sockets}; font-src 'self'; object-src 'none'; base-uri 'none'; "
          "form-action 'self'; frame-ancestors {ancestors}")
HSTS = "max-age=31536000; includeSubDomains"
EMBEDDABLE_PREFIX = "/share/"  # public links (app/auth/access.py)


# Answers browsers and proxies may keep: the vendored assets and the tracker script. Everything
# else (dashboards, reports, settings, CSV, the JSON API, a new secret shown once) is no-store.
CACHEABLE_ENDPOINTS = ("static", "dashboard.tracker_js", "api.openapi_json")


@functools.cache
def _socket_origin(url: str | None) -> str:
    """The WebSocket API's origin, which the realtime page may connect to (AWS: app/live_sockets.py)."""
    if not url:
        return ""
    parts = urlsplit(url)
    return f" {parts.scheme}://{parts.netloc}"


def security_headers(response: Response) -> Response:
    if "Cache-Control" not in response.headers and request.endpoint not in CACHEABLE_ENDPOINTS:
        response.headers["Cache-Control"] = "no-store"
    embeddable = request.path.startswith(EMBEDDABLE_PREFIX)
    response.headers["Content-Security-Policy"] = POLICY.format(
        ancestors="*" if embeddable else "'none'", sockets=_socket_origin(current_app.config.get("LIVE_SOCKET_URL")))
    if not embeddable:
        response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    if request.is_secure:
        response.headers["Strict-Transport-Security"] = HSTS
    return response


def set_up_security(app: Flask) -> None:
    proxies = app.config["PROXIES"]
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies, x_port=proxies)
    app.after_request(security_headers)


def private_folder(path: Path) -> Path:
    """The app's instance folder (its secret key, the demo login, by default the SQLite file):
    made if missing, and readable by this user only."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o700)
    return path
