"""A site's secret API keys on its settings page: create (shown once), rotate, revoke."""
from __future__ import annotations

from flask import abort, current_app, flash, g, redirect, request, url_for

from app.auth import api_keys
from app.auth.access import needs_role
from app.context import get_store, now_ms
from app.i18n import gettext as _

from .settings import actor, bp, render_settings


def _key(key_hash: str):
    try:
        return api_keys.site_key(get_store(), g.site.site_id, key_hash)
    except api_keys.ApiKeyError as exc:
        abort(404, str(exc))


def _shown_once(make_key):
    """Make a key and show its secret in this answer only (the store keeps its hash)."""
    try:
        _, secret = make_key()
    except api_keys.ApiKeyError as exc:
        return render_settings(error=str(exc), status=400)
    return render_settings(new_api_key=secret)


@bp.post("/sites/<site_id>/keys")
@needs_role("admin")
def create_api_key(site_id: str):
    return _shown_once(lambda: api_keys.create_key(get_store(), site_id, request.form.get("name", ""),
                                                   actor(), now_ms()))


@bp.post("/sites/<site_id>/keys/<key_hash>/rotate")
@needs_role("admin")
def rotate_api_key(site_id: str, key_hash: str):
    old, grace_ms = _key(key_hash), current_app.config["API_KEY_GRACE_S"] * 1000
    return _shown_once(lambda: api_keys.rotate(get_store(), old, actor(), now_ms(), grace_ms))


@bp.post("/sites/<site_id>/keys/<key_hash>/revoke")
@needs_role("admin")
def revoke_api_key(site_id: str, key_hash: str):
    key = _key(key_hash)
    api_keys.revoke(get_store(), key, actor(), now_ms())
    flash(_("Key %(name)s revoked: it no longer opens the API.", name=repr(key.name)))
    return redirect(url_for("dashboard.site_settings", site_id=site_id))
