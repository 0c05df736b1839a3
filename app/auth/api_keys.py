"""Secret API keys for the stats API: made with a name, shown once, kept as a SHA-256 hash
(the secret is 192 random bits, so a fast hash is enough: no one can guess their way back),
listed with their last use, rotated with a grace period, revoked; each change recorded in the
site's audit log.

A site's public tracker key is another thing: it is in every page, and only lets a browser
on the site's domains send events (app/auth/sites.py).
"""
from __future__ import annotations

import hashlib
import secrets

from app.auth import audit
from app.i18n import gettext as _
from app.store.base import ApiKey, Store

PREFIX = "sk_"
MAX_NAME = 100
SHOWN_CHARS = 10  # of the secret, to tell keys apart in a list ("sk_AbC1dEf…")
LAST_USE_RESOLUTION_MS = 60_000  # a key used again within a minute is not written again
DEFAULT_GRACE_MS = 24 * 3_600_000  # a rotated key keeps working this long


class ApiKeyError(ValueError):
    """A key operation that cannot be done as asked; the message says why."""


def key_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _audit(store: Store, key: ApiKey, actor: str, action: str, now_ms: int) -> None:
    audit.record(store, key.site_id, actor, action, f"{key.name} ({key.prefix}…)", now_ms)


def _new_key(store: Store, site_id: str, name: str, actor: str, now_ms: int) -> tuple[ApiKey, str]:
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME:
        raise ApiKeyError(_("a key needs a name of 1 to %(most)s characters (what uses it)", most=MAX_NAME))
    secret = PREFIX + secrets.token_urlsafe(24)
    key = ApiKey(key_hash(secret), site_id, name, secret[:SHOWN_CHARS], now_ms, actor)
    store.create_api_key(key)
    return key, secret


def create_key(store: Store, site_id: str, name: str, actor: str, now_ms: int) -> tuple[ApiKey, str]:
    """A new key and its secret, which is shown once and never stored."""
    key, secret = _new_key(store, site_id, name, actor, now_ms)
    _audit(store, key, actor, "api_key.create", now_ms)
    return key, secret


def authenticate(store: Store, secret: str, now_ms: int) -> ApiKey | None:
    """The valid key a secret is, or None; notes when it was last used (once a minute)."""
    if not secret.startswith(PREFIX) or len(secret) > 100:
        return None
    key = store.get_api_key(key_hash(secret))
    if key is None or not key.valid_at(now_ms):
        return None
    if key.last_used_ms is None or now_ms - key.last_used_ms >= LAST_USE_RESOLUTION_MS:
        key.last_used_ms = now_ms
        store.update_api_key(key)
    return key


def site_key(store: Store, site_id: str, key_hash_: str) -> ApiKey:
    key = store.get_api_key(key_hash_)
    if key is None or key.site_id != site_id:
        raise ApiKeyError(_("no such key on this site"))
    return key


def rotate(store: Store, key: ApiKey, actor: str, now_ms: int,
           grace_ms: int = DEFAULT_GRACE_MS) -> tuple[ApiKey, str]:
    """A new key of the same name; the old one keeps working for the grace period."""
    if not key.valid_at(now_ms):
        raise ApiKeyError(_("this key is revoked or expired: create a new one"))
    new, secret = _new_key(store, key.site_id, key.name, actor, now_ms)
    key.expires_ms = now_ms + grace_ms if key.expires_ms is None else min(key.expires_ms, now_ms + grace_ms)
    store.update_api_key(key)
    _audit(store, new, actor, "api_key.rotate", now_ms)
    return new, secret


def revoke(store: Store, key: ApiKey, actor: str, now_ms: int) -> None:
    if key.revoked_ms is None:
        key.revoked_ms = now_ms
        store.update_api_key(key)
        _audit(store, key, actor, "api_key.revoke", now_ms)


def state(key: ApiKey, now_ms: int) -> str:
    """What a list shows: active, expiring (rotated, in its grace period), expired, revoked."""
    if key.revoked_ms is not None:
        return "revoked"
    if key.expires_ms is None:
        return "active"
    return "expiring" if now_ms < key.expires_ms else "expired"
