"""A site's privacy settings on its settings page: the signals it honours, the referrers it
blocks, and GDPR requests about one visitor (a copy of their data, or its erasure)."""
from __future__ import annotations

import json

from flask import current_app, flash, g, redirect, request, url_for

from app.auth.access import needs_role
from app.auth.sites import SiteError, set_privacy
from app.context import get_store, now_ms
from app.i18n import gettext as _
from app.privacy import PrivacyError, erase_visitor, export_visitor, visitor_fingerprint

from .settings import actor, bp, domain_list, render_settings, settings_saved

# What an erasure says it deleted, by the store's name for it (the audit log keeps those names).
ERASED = {"events": lambda n: _("%(num)s events", num=n), "sessions": lambda n: _("%(num)s sessions", num=n),
          "visitors": lambda n: _("%(num)s visitors", num=n)}


@bp.post("/sites/<site_id>/privacy")
@needs_role("admin")
def privacy_settings(site_id: str):
    form = request.form
    try:
        set_privacy(get_store(), g.site, form.get("honour_dnt") == "on", form.get("honour_gpc") == "on",
                    domain_list(form.get("blocked_referrers", "")))
    except SiteError as exc:
        return render_settings(error=str(exc), status=400)
    site = g.site
    return settings_saved(_("Privacy settings saved."), "site.privacy",
                          f"DNT {'honoured' if site.honour_dnt else 'ignored'}, "
                          f"GPC {'honoured' if site.honour_gpc else 'ignored'}, "
                          f"{len(site.blocked_referrers)} blocked referrer(s)")


@bp.post("/sites/<site_id>/visitors/export")
@needs_role("admin")
def export_visitor_data(site_id: str):
    user_id = request.form.get("visitor_id", "")
    try:
        document = export_visitor(get_store(), g.site, user_id, actor(), now_ms())
    except PrivacyError as exc:
        return render_settings(error=str(exc), status=400)
    response = current_app.response_class(json.dumps(document, indent=2, ensure_ascii=False),
                                          mimetype="application/json")
    name = f"liveinsight-{site_id}-visitor-{visitor_fingerprint(user_id.strip())}.json"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/sites/<site_id>/visitors/erase")
@needs_role("admin")
def erase_visitor_data(site_id: str):
    if request.form.get("confirm") != "on":
        return render_settings(error=_("Tick the box to confirm the erasure."), status=400)
    try:
        deleted = erase_visitor(get_store(), g.site, request.form.get("visitor_id", ""), actor(), now_ms())
    except PrivacyError as exc:
        return render_settings(error=str(exc), status=400)
    # erase_visitor recorded it in the audit log (settings_saved would record it twice)
    said = ", ".join(ERASED[what](n) if what in ERASED else f"{n} {what}" for what, n in deleted.items())
    flash(_("Visitor erased: %(deleted)s deleted.", deleted=said))
    return redirect(url_for("dashboard.site_settings", site_id=site_id))
