"""A site's own traffic sources on its settings page: name a host and choose its channel, or
drop the rule. Each change is written to the audit log."""
from __future__ import annotations

from flask import g, request

from app.auth.access import needs_role
from app.context import get_store, now_ms
from app.i18n import gettext as _
from app.ingest import sources

from .formatting import dimension_label
from .settings import render_settings, settings_saved
from .views import bp


@bp.post("/sites/<site_id>/sources")
@needs_role("admin")
def add_source(site_id: str):
    form = request.form
    try:
        rule = sources.add_site_source(get_store(), g.site, form.get("host", ""), form.get("name", ""),
                                       form.get("channel", ""), now_ms())
    except sources.SourceRuleError as exc:
        return render_settings(error=str(exc), status=400)
    channel = dimension_label(rule["channel"], "channel")
    return settings_saved(_("Visits from %(host)s count as %(name)s (%(channel)s) from now on.",
                            host=rule["host"], name=repr(rule["name"]), channel=channel),
                          "source.add", f"{rule['host']}: {rule['name']}, {rule['channel']}", anchor="sources")


@bp.post("/sites/<site_id>/sources/remove")
@needs_role("admin")
def remove_source(site_id: str):
    host = request.form.get("host", "")
    try:
        sources.remove_site_source(get_store(), g.site, host, now_ms())
    except sources.SourceRuleError as exc:
        return render_settings(error=str(exc), status=404)
    return settings_saved(_("Visits from %(host)s are named by the built-in list again from now on.", host=host),
                          "source.remove", host, anchor="sources")
