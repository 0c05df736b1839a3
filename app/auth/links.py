"""Public links: a revocable, read-only view of one site's dashboard for people without an
account (a team TV, a public stats page). Only the token's hash is stored, so a stolen
database does not give the links away."""
from __future__ import annotations

import hashlib
import secrets

from app.store.base import PublicLink, Store

MAX_LABEL = 100


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_link(store: Store, site_id: str, label: str, user_id: str, now_ms: int) -> tuple[PublicLink, str]:
    """A new link and its token; the token is shown once (it is the link's URL)."""
    token = secrets.token_urlsafe(24)
    link = PublicLink(token_hash(token), site_id, label.strip()[:MAX_LABEL], now_ms, user_id)
    store.create_public_link(link)
    return link, token


def resolve(store: Store, token: str) -> PublicLink | None:
    """The live link a token opens, or None when unknown or revoked."""
    if not 20 <= len(token) <= 64:
        return None
    link = store.get_public_link(token_hash(token))
    return link if link and link.revoked_ms is None else None
