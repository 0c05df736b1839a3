"""Headers that make browsers enforce what the app promises, and trusting a reverse proxy.

- Content-Security-Policy: scripts, styles, images and requests from this origin only, no
  inline script or style (the dashboard has none: charts read data attributes), no plugins, no
  <base> rewriting, forms post here. So even a string a stranger sent that escaped escaping
  could not run.
- frame-ancestors 'none' (and X-Frame-Options: DENY) everywhere but the public-link views,
  which owners may embed in an iframe.
- Referrer-Policy: same-origin: a public link's token, which is in its URL, never leaves in a
  Referer header; same-origin form posts keep theirs (CSRF checks use it over HTTPS).
- HSTS, over HTTPS only (directly, or through a proxy counted in LIVEINSIGHT_PROXIES).
"""
from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.middleware.proxy_fix import ProxyFix

POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
          "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
          "form-action 'self'; frame-ancestors {ancestors}")
HSTS = "max-age=31536000; includeSubDomains"
EMBEDDABLE_PREFIX = "/share/"  # public links (app/auth/access.py)


def security_headers(response: Response) -> Response:
    embeddable = request.path.startswith(EMBEDDABLE_PREFIX)
    response.headers["Content-Security-Policy"] = POLICY.format(ancestors="*" if embeddable else "'none'")
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
