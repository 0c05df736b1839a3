"""Accounts: creating users, checking passwords, and who may do what on which site.

Passwords are hashed with scrypt through werkzeug (a maintained implementation with a salt per
hash; no extra compiled dependency for the Lambda package). Roles are per site (ROLES, weakest
first); an instance admin acts as an owner of every site.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from werkzeug.security import check_password_hash, generate_password_hash

from app.i18n import gettext as _
from app.store.base import ROLES, Login, Store, User

MIN_PASSWORD = 10
MAX_PASSWORD = 200  # scrypt takes any length; this only bounds the work one request can ask for
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")
# Checked when the email is unknown, so a wrong email costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash(secrets.token_hex(16))


class AccountError(ValueError):
    """A request about accounts that cannot be done as asked; the message says why."""


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if not EMAIL.match(email):
        raise AccountError(_("not an email address: %(email)s", email=repr(email)))
    return email


def check_new_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AccountError(_("a password needs %(least)s to %(most)s characters",
                             least=MIN_PASSWORD, most=MAX_PASSWORD))


def create_user(store: Store, email: str, password: str, now_ms: int, is_admin: bool = False) -> User:
    check_new_password(password)
    user = User(user_id=secrets.token_hex(8), email=normalise_email(email),
                password_hash=generate_password_hash(password), created_ms=now_ms, is_admin=is_admin)
    store.create_user(user)  # raises Conflict when the email is taken
    return user


def authenticate(store: Store, email: str, password: str) -> User | None:
    """The user with this email and password, or None (same work either way)."""
    try:
        user = store.get_user_by_email(normalise_email(email))
    except AccountError:
        user = None
    if user is None:
        password_matches(User("", "", _DUMMY_HASH, 0), password)
        return None
    return user if password_matches(user, password) else None


def password_matches(user: User, password: str) -> bool:
    return len(password) <= MAX_PASSWORD and check_password_hash(user.password_hash, password)


def change_password(store: Store, user: User, current: str, new: str) -> User:
    if not password_matches(user, current):
        raise AccountError(_("the current password is not right"))
    return set_password(store, user, new)


def set_password(store: Store, user: User, new: str) -> User:
    check_new_password(new)
    user.password_hash = generate_password_hash(new)
    store.update_user(user)
    return user


def set_language(store: Store, user: User, language: str) -> User:
    """The interface's language the user chose ("" = the browser's); the caller checks it is one
    of app.i18n.LANGUAGES."""
    stored = store.get_user(user.user_id) or user  # as stored now: a login may have begun meanwhile
    stored.language = user.language = language
    store.update_user(stored)
    return stored


# -- logins: each browser a user logs in with holds a random login id in its signed cookie;
# the user record keeps the hash of every live one, so a login ends on the server.
MAX_LOGINS = 20  # per user; a new login past these ends the oldest


def _login_hash(login_id: str) -> str:
    return hashlib.sha256(login_id.encode()).hexdigest()


def start_login(store: Store, user: User, now_ms: int, lifetime_ms: int) -> str:
    """A new login of the user (its expired ones dropped); returns the id its cookie keeps."""
    login_id = secrets.token_urlsafe(24)
    user = store.get_user(user.user_id) or user  # as stored now: another login may have begun
    live = [login for login in user.logins if now_ms - login.started_ms < lifetime_ms]
    user.logins = [*live, Login(_login_hash(login_id), now_ms)][-MAX_LOGINS:]
    store.update_user(user)
    return login_id


def is_live_login(user: User, login_id: str | None, now_ms: int, lifetime_ms: int) -> bool:
    """Whether a cookie's login id is one of the user's live logins, begun less than the login
    lifetime ago (a cookie renewed by every request still ends then)."""
    if not login_id:
        return False
    wanted = _login_hash(login_id)
    return any(hmac.compare_digest(login.id_hash, wanted) and now_ms - login.started_ms < lifetime_ms
               for login in user.logins)


def end_logins(store: Store, user: User, keep: str | None = None, only: str | None = None) -> None:
    """End the login `only`, or every login but `keep` (None: every login)."""
    user = store.get_user(user.user_id) or user
    if only is not None:
        user.logins = [login for login in user.logins if login.id_hash != _login_hash(only)]
    else:
        user.logins = [login for login in user.logins if keep is not None and login.id_hash == _login_hash(keep)]
    store.update_user(user)


# -- roles
def role_on(store: Store, user: User, site_id: str) -> str | None:
    """The user's role on a site: "owner" for instance admins, else its membership's, or None."""
    if user.is_admin:
        return "owner"
    membership = store.get_membership(site_id, user.user_id)
    return membership.role if membership else None


def at_least(role: str | None, needed: str) -> bool:
    return role is not None and ROLES.index(role) >= ROLES.index(needed)


def sites_of(store: Store, user: User) -> list:
    """The sites a user can open, in the order they were created."""
    if user.is_admin:
        return store.list_sites()
    sites = [store.get_site(m.site_id) for m in store.user_memberships(user.user_id)]
    return sorted((s for s in sites if s), key=lambda s: s.created_ms)
