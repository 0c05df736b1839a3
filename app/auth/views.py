"""The auth blueprint: first-run setup, login and logout, the account page, and users (admins)."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from app.auth.access import admin_required, current_user, log_in, log_out, login_required
from app.auth.users import AccountError, authenticate, change_password, create_user
from app.context import get_store, now_ms
from app.limits import rate_limited
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


@bp.route("/setup", methods=["GET", "POST"])
def setup():
    """First run: the first account, an instance admin. Gone once any user exists."""
    if not no_users_yet():
        return redirect(url_for("auth.login"))
    error = None
    if request.method == "POST":
        form = request.form
        try:
            if form.get("password", "") != form.get("password2", ""):
                raise AccountError("the two passwords differ")
            user = create_user(get_store(), form.get("email", ""), form.get("password", ""), now_ms(), is_admin=True)
        except (AccountError, Conflict) as exc:
            error = str(exc)
        else:
            log_in(user)
            return redirect(url_for("dashboard.index"))
    return render_template("pages/setup.html", error=error), 400 if error else 200


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
        return render_template("pages/login.html", error="Wrong email or password.", next=next_url,
                               email=request.form.get("email", "")), 401
    if current_user() is not None:
        return redirect(next_url)
    return render_template("pages/login.html", next=next_url, email="")


@bp.post("/logout")
def logout():
    log_out()
    return redirect(url_for("auth.login"))


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account():
    user, error = current_user(), None
    if request.method == "POST":
        form = request.form
        try:
            if form.get("new", "") != form.get("new2", ""):
                raise AccountError("the two new passwords differ")
            change_password(get_store(), user, form.get("current", ""), form.get("new", ""))
        except AccountError as exc:
            error = str(exc)
        else:
            log_in(user)  # this session stays; every other one ends with the old password
            flash("Password changed. Other sessions are logged out.")
            return redirect(url_for("auth.account"))
    return render_template("pages/account.html", user=user, error=error), 400 if error else 200


@bp.route("/users", methods=["GET", "POST"])
@admin_required
def users():
    error = None
    if request.method == "POST":
        form = request.form
        try:
            user = create_user(get_store(), form.get("email", ""), form.get("password", ""), now_ms(),
                               is_admin=form.get("is_admin") == "on")
        except (AccountError, Conflict) as exc:
            error = str(exc)
        else:
            flash(f"Created {user.email}. Give them their password; they can change it under Account.")
            return redirect(url_for("auth.users"))
    return render_template("pages/users.html", users=get_store().list_users(), error=error), 400 if error else 200


@bp.post("/users/<user_id>/delete")
@admin_required
def delete_user(user_id: str):
    if user_id == current_user().user_id:
        abort(400, "you cannot delete your own account while logged in with it")
    get_store().delete_user(user_id)
    flash("User deleted.")
    return redirect(url_for("auth.users"))
