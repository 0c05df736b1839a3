"""The secret key and the login-session cookie."""
from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface

from app.security import private_folder


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, marked Secure whenever the request came over HTTPS
    (directly, or through a proxy that ProxyFix trusts), so one config serves both."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"] or request.is_secure)

    def open_session(self, app: Flask, request):
        # No login cookie (every tracker request): nothing to verify, so skip building the
        # signing serializer, which Flask does first on every request.
        if not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


def ensure_secret_key(app: Flask) -> None:
    if app.config.get("SECRET_KEY"):
        return
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        # Each Lambda container would make its own key and log everyone out: refuse.
        raise RuntimeError("set LIVEINSIGHT_SECRET_ARN (template.yaml sets it to the stack's secret) "
                           "or LIVEINSIGHT_SECRET_KEY")
    app.config["SECRET_KEY"] = _kept_key(Path(app.instance_path) / "secret_key")


def _kept_key(path: Path) -> str:
    """A random key made once and read by every worker after (O_EXCL: one writer wins)."""
    private_folder(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(100):  # another worker may be writing it this instant
            key = path.read_text().strip()
            if key:
                return key
            time.sleep(0.02)
        raise RuntimeError(f"{path} is empty: delete it and restart")
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_hex(32))
    return path.read_text().strip()
