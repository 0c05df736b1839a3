"""Stopping a report from its email, without logging in: the link's signed token says who stops
which report of which site (app/alerts/reports.py), so it is the only authority these views need.
They have no site_id in their URL, so the site-access check leaves them be (app/auth/access.py).

GET shows what would stop and a button; POST stops it (CSRF-exempt: the token is the authority,
and a mail client's RFC 8058 one-click POST, body `List-Unsubscribe=One-Click`, carries no
CSRF token). Stopping twice is the same as once. Each stop is written to the audit log."""
from __future__ import annotations

from typing import NamedTuple

from flask import abort, current_app, render_template

from app import csrf
from app.alerts.reports import read_unsubscribe_token
from app.alerts.settings import AlertSettings, subscribe_report
from app.auth import audit
from app.context import get_store, now_ms
from app.i18n import gettext as _, lazy_gettext as _l
from app.store.base import Site, User

from .views import bp

BAD_LINK = _l("This unsubscribe link is not valid: it may have been cut short or changed. "
              "Open the link from the email again, or stop the report on the site's Alerts page.")


class Subscription(NamedTuple):
    site: Site
    recipient: User  # not "user": base.html has its own (who is logged in, if anyone)
    kind: str


def _subscription(token: str) -> Subscription:
    """What the token names, or a 404 saying why not."""
    keys = [*(current_app.config.get("SECRET_KEY_FALLBACKS") or []), current_app.config["SECRET_KEY"]]
    found = read_unsubscribe_token(keys, token)
    if found is None:
        abort(404, str(BAD_LINK))
    site_id, user_id, kind = found
    store = get_store()
    site, user = store.get_site(site_id), store.get_user(user_id)
    if site is None or user is None:
        abort(404, _("This report no longer exists: its site or its recipient was deleted."))
    return Subscription(site, user, kind)


# The view argument is not called "token": that name is a public link's (access.open_public_link).
@bp.get("/unsubscribe/<unsubscribe_token>")
def unsubscribe(unsubscribe_token: str):
    found = _subscription(unsubscribe_token)
    subscribed = found.recipient.user_id in AlertSettings.of(found.site).reports[found.kind]
    return render_template("pages/unsubscribe.html", **found._asdict(), token=unsubscribe_token,
                           subscribed=subscribed, done=False)


@bp.post("/unsubscribe/<unsubscribe_token>")
def unsubscribe_confirmed(unsubscribe_token: str):
    found = _subscription(unsubscribe_token)
    store = get_store()
    if found.recipient.user_id in AlertSettings.of(found.site).reports[found.kind]:
        subscribe_report(store, found.site, found.recipient.user_id, found.kind, False)
        audit.record(store, found.site.site_id, found.recipient.email, "alerts.reports",
                     f"{found.recipient.email}: {found.kind} off (from the email)", now_ms())
    return render_template("pages/unsubscribe.html", **found._asdict(), token=unsubscribe_token,
                           subscribed=False, done=True)


csrf.exempt(unsubscribe_confirmed)
