"""Who is asking: the logged-in user (a signed session cookie), the public link being viewed,
and the check every site page runs before its view.

A site's pages are reached two ways: /sites/<site_id>/... by a logged-in member, and
/share/<token>/... through a public link (read-only: only the views registered under /share).
Views read the site from `g.site`; templates build links with `site_url`, which keeps
whichever of the two prefixes the page was opened with.
"""
from __future__ import annotations

from functools import wraps
from typing import Callable

from flask import abort, current_app, g, make_response, redirect, request, session, url_for
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup

from app.auth import links, users
from app.auth.users import at_least, role_on
from app.context import get_store, now_ms
from app.i18n import gettext as _, lazy_gettext as _l
from app.store.base import User


# -- the login session: the signed cookie holds the user id and the login's id
def _lifetime_ms() -> int:
    return int(current_app.permanent_session_lifetime.total_seconds() * 1000)


def log_in(user: User) -> None:
    session.clear()  # a new cookie: nothing from before the login carries over
    session["uid"] = user.user_id
    session["login"] = users.start_login(get_store(), user, now_ms(), _lifetime_ms())
    session.permanent = True
    g.user = user


def log_out(everywhere: bool = False) -> None:
    """End this browser's login (or every login of the user) on the server, not only its cookie:
    a copy of the cookie opens nothing afterwards."""
    user = current_user()
    if user is not None:
        if everywhere:
            users.end_logins(get_store(), user)
        else:
            users.end_logins(get_store(), user, only=session.get("login"))
    session.clear()
    g.user = None


def end_other_logins(user: User) -> None:
    """Every login of the user but this browser's (after a password change)."""
    users.end_logins(get_store(), user, keep=session.get("login"))


def current_user() -> User | None:
    if "user" not in g:
        g.user = _session_user()
    return g.user


def _session_user() -> User | None:
    user_id = session.get("uid")
    if not user_id:
        return None
    user = get_store().get_user(user_id)
    if user is None or not users.is_live_login(user, session.get("login"), now_ms(), _lifetime_ms()):
        session.clear()  # deleted, logged out, or past the login's lifetime
        return None
    return user


def login_redirect():
    """To the login page and back here afterwards; htmx follows HX-Redirect instead of
    swapping the login form into a widget."""
    target = url_for("auth.login", next=request.full_path if request.method == "GET" else None)
    if request.headers.get("HX-Request") == "true":
        response = make_response("", 204)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target)


def login_required(view: Callable) -> Callable:
    @wraps(view)
    def wrapped(*args, **kwargs):
        if current_user() is None:
            return login_redirect()
        return view(*args, **kwargs)
    return wrapped


def admin_required(view: Callable) -> Callable:
    """Instance admins only (creating users)."""
    @wraps(view)
    def wrapped(*args, **kwargs):
        user = current_user()
        if user is None:
            return login_redirect()
        if not user.is_admin:
            abort(403, _("only an instance admin can do this"))
        return view(*args, **kwargs)
    return wrapped


# -- site pages
# A role as a sentence names it (the roles themselves are codes: app.store.base.ROLES).
ROLE_NAMES = {"viewer": _l("viewer"), "admin": _l("admin"), "owner": _l("owner")}


def needs_role(role: str) -> Callable:
    """Mark a site view as needing more than the default "viewer" role."""
    def mark(view: Callable) -> Callable:
        view.needs_role = role
        return view
    return mark


def open_public_link(endpoint: str | None, values: dict | None) -> None:
    """URL preprocessor: /share/<token>/... becomes the link's site, viewed read-only."""
    token = (values or {}).pop("token", None)
    if token is None:
        return
    link = links.resolve(get_store(), token)
    if link is None:
        abort(404, _("this link does not exist or was revoked"))
    g.public_link, g.share_token = link, token
    values["site_id"] = link.site_id


def check_site_access():
    """before_request of site pages: sets g.site and g.role, or answers 302/403/404.
    A site the user has no role on is a 404, so site ids cannot be probed."""
    site_id = (request.view_args or {}).get("site_id")
    if site_id is None:
        return None
    view = current_app.view_functions.get(request.endpoint)
    needed = getattr(view, "needs_role", "viewer")
    if g.get("public_link") is not None:
        role = "viewer"
    else:
        user = current_user()
        if user is None:
            return login_redirect()
        role = role_on(get_store(), user, site_id)
        if role is None:
            abort(404, _("no site %(site)s", site=repr(site_id)))
    if not at_least(role, needed):
        abort(403, _("this needs the %(role)s role on the site", role=ROLE_NAMES.get(needed, needed)))
    site = get_store().get_site(site_id)
    if site is None:
        abort(404, _("no site %(site)s", site=repr(site_id)))
    g.site, g.role = site, role
    return None


def site_url(endpoint: str, **values) -> str:
    """A URL of the current site's pages, under /share/<token> when opened through a link."""
    if g.get("share_token"):
        return url_for(endpoint, token=g.share_token, **values)
    return url_for(endpoint, site_id=g.site.site_id, **values)


def can(role: str) -> bool:
    """Whether the current viewer of the site page has at least this role (for templates)."""
    return g.get("public_link") is None and at_least(g.get("role"), role)


def csrf_field() -> Markup:
    """The hidden field every POST form carries (flask-wtf checks it)."""
    return Markup('<input type="hidden" name="csrf_token" value="%s">') % generate_csrf()
