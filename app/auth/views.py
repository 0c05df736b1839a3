"""The auth blueprint: first-run setup, login and logout, the account page, and users (admins)."""
from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import refresh

from app.auth import audit, members
from app.auth.access import admin_required, current_user, end_other_logins, log_in, log_out, login_required
from app.auth.users import AccountError, authenticate, change_password, create_user, normalise_email, set_language
from app.context import get_store, now_ms
from app.i18n import LANGUAGES, gettext as _
from app.limits import client_id, rate_limited
from app.store.base import Conflict

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Only a path on this site: `next` must not send a fresh login elsewhere."""
    # Browsers read "/\\host" as "//host": no backslash either.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target \
            and not urlsplit(target).netloc:
        return target
    return url_for("dashboard.index")


def no_users_yet() -> bool:
    return not get_store().list_users()


def _taken(email: str) -> str:
    """What the form says when the email it gave has an account already (the store's Conflict)."""
    return _("a user with the email %(email)s exists already", email=repr(normalise_email(email)))


@bp.route("/setup", methods=["GET", "POST"])
def setup():
    """First run: the first account, an instance admin. Only with the setup link's token, which
    only the operator can read (the server's log, `setup-url`), so whoever finds a new instance
    first cannot take it. Gone once any user exists."""
    if not no_users_yet():
        return redirect(url_for("auth.login"))
    token = request.values.get("token", "")
    if not setup_token_matches(token):
        current_app.logger.warning("no account yet: the operator's setup link is %s", setup_url())
        return render_template("pages/setup.html", no_token=True), 403
    error = None
    if request.method == "POST":
        form = request.form
        try:
            if form.get("password", "") != form.get("password2", ""):
                raise AccountError(_("the two passwords differ"))
            user = create_user(get_store(), form.get("email", ""), form.get("password", ""), now_ms(), is_admin=True)
        except AccountError as exc:
            error = str(exc)
        except Conflict:
            error = _taken(form.get("email", ""))
        else:
            log_in(user)
            return redirect(url_for("dashboard.index"))
    return render_template("pages/setup.html", token=token, error=error), 400 if error else 200


def setup_token() -> str:
    """The setup link's token: derived from the secret key, so it needs no storage and only
    whoever can read the key (the operator) can know it."""
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, b"liveinsight first-run setup", hashlib.sha256).hexdigest()[:32]


def setup_token_matches(token: str) -> bool:
    return hmac.compare_digest(token.encode(), setup_token().encode())


def setup_url() -> str:
    return url_for("auth.setup", token=setup_token(), _external=True)


@bp.route("/login", methods=["GET", "POST"])
@rate_limited("RATE_LIMIT_LOGIN", methods=["POST"])  # per client: against password guessing
def login():
    if no_users_yet():
        return redirect(url_for("auth.setup"))
    next_url = _safe_next(request.values.get("next"))
    if request.method == "POST":
        user = authenticate(get_store(), request.form.get("email", ""), request.form.get("password", ""))
        if user is not None:
            log_in(user)
            return redirect(next_url)
        return render_template("pages/login.html", error=_("Wrong email or password."), next=next_url,
                               email=request.form.get("email", "")), 401
    if current_user() is not None:
        return redirect(next_url)
    return render_template("pages/login.html", next=next_url, email="")


@bp.post("/logout")
def logout():
    log_out()
    return redirect(url_for("auth.login"))


def _account_limit_key() -> str:
    """Password checks on /account are limited per user, wherever they come from."""
    user = current_user()
    return f"user|{user.user_id}" if user else f"client|{client_id()}"


@bp.route("/account", methods=["GET", "POST"])
@rate_limited("RATE_LIMIT_LOGIN", _account_limit_key, methods=["POST"])  # the current password is checked
@login_required
def account():
    user, error = current_user(), None
    if request.method == "POST":
        form = request.form
        try:
            if form.get("new", "") != form.get("new2", ""):
                raise AccountError(_("the two new passwords differ"))
            change_password(get_store(), user, form.get("current", ""), form.get("new", ""))
        except AccountError as exc:
            error = str(exc)
        else:
            end_other_logins(user)  # this browser stays logged in
            flash(_("Password changed. Other sessions are logged out."))
            return redirect(url_for("auth.account"))
    return render_template("pages/account.html", user=user, error=error), 400 if error else 200


@bp.post("/account/language")
@login_required
def account_language():
    """The interface's language: one of LANGUAGES, or "" for whatever the browser asks for."""
    user, chosen = current_user(), request.form.get("language", "")
    if chosen and chosen not in LANGUAGES:
        error = _("Unknown language %(language)s: choose one in the list.", language=repr(chosen[:20]))
        return render_template("pages/account.html", user=user, language_error=error), 400
    set_language(get_store(), user, chosen)
    refresh()  # this request's messages (the notice below) speak the new choice already
    flash(_("Language saved."))
    return redirect(url_for("auth.account"))


@bp.post("/account/logout-everywhere")
@login_required
def logout_everywhere():
    """End every login of this user, this browser's included (a lost laptop, a shared computer)."""
    log_out(everywhere=True)
    flash(_("Logged out everywhere."))
    return redirect(url_for("auth.login"))


@bp.post("/invitations/<site_id>/accept")
@login_required
def accept_invitation(site_id: str):
    try:
        members.accept(get_store(), current_user(), site_id, now_ms())
    except AccountError as exc:
        abort(404, str(exc))
    audit.record(get_store(), site_id, current_user().email, "member.join", "accepted an invitation", now_ms())
    return redirect(url_for("dashboard.overview", site_id=site_id))


@bp.post("/invitations/<site_id>/decline")
@login_required
def decline_invitation(site_id: str):
    if get_store().get_invitation(site_id, current_user().email):
        members.decline(get_store(), current_user(), site_id)
        audit.record(get_store(), site_id, current_user().email, "member.decline", "declined an invitation", now_ms())
    flash(_("Invitation declined."))
    return redirect(url_for("dashboard.index"))


@bp.route("/users", methods=["GET", "POST"])
@admin_required
def users():
    error = None
    if request.method == "POST":
        form = request.form
        try:
            user = create_user(get_store(), form.get("email", ""), form.get("password", ""), now_ms(),
                               is_admin=form.get("is_admin") == "on")
        except AccountError as exc:
            error = str(exc)
        except Conflict:
            error = _taken(form.get("email", ""))
        else:
            flash(_("Created %(email)s. Give them their password; they can change it under Account.",
                    email=user.email))
            return redirect(url_for("auth.users"))
    return render_template("pages/users.html", users=get_store().list_users(), error=error), 400 if error else 200


@bp.post("/users/<user_id>/delete")
@admin_required
def delete_user(user_id: str):
    if user_id == current_user().user_id:
        abort(400, _("you cannot delete your own account while logged in with it"))
    get_store().delete_user(user_id)
    flash(_("User deleted."))
    return redirect(url_for("auth.users"))
