"""Settings of what a site counts: its goals (add, rename, delete), its currency, outbound
links and download extensions. Each change is written to the audit log."""
from __future__ import annotations

from flask import g, request
from flask_babel import force_locale

from app.analytics import goals
from app.context import get_store, now_ms
from app.auth.access import needs_role
from app.i18n import gettext as _

from .settings import render_settings, settings_saved
from .views import bp


@bp.post("/sites/<site_id>/goals")
@needs_role("admin")
def add_goal(site_id: str):
    form = request.form
    try:
        goal = goals.add_goal(get_store(), g.site, form.get("name", ""), form.get("kind", ""), form.get("match", ""),
                              form.get("prop", ""), form.get("value", ""), now_ms())
    except goals.GoalError as exc:
        return render_settings(error=str(exc), status=400)
    return settings_saved(_("Goal %(name)s added: it counts from now on.", name=repr(goal.name)), "goal.add",
                          _logged(goal), anchor="goals")


@bp.post("/sites/<site_id>/goals/<goal_id>/rename")
@needs_role("admin")
def rename_goal(site_id: str, goal_id: str):
    try:
        goal = goals.rename_goal(get_store(), g.site, goal_id, request.form.get("name", ""))
    except goals.GoalError as exc:
        return render_settings(error=str(exc), status=404 if isinstance(exc, goals.NoSuchGoal) else 400)
    return settings_saved(_("Goal renamed to %(name)s.", name=repr(goal.name)), "goal.rename", goal.name,
                          anchor="goals")


@bp.post("/sites/<site_id>/goals/<goal_id>/delete")
@needs_role("admin")
def delete_goal(site_id: str, goal_id: str):
    try:
        goal = goals.delete_goal(get_store(), g.site, goal_id)
    except goals.GoalError as exc:
        return render_settings(error=str(exc), status=404)
    return settings_saved(_("Goal %(name)s deleted.", name=repr(goal.name)), "goal.delete",
                          _logged(goal), anchor="goals")


@bp.post("/sites/<site_id>/counting")
@needs_role("admin")
def counting_settings(site_id: str):
    form = request.form
    try:
        goals.set_counting(get_store(), g.site, form.get("currency", ""), form.get("outbound_links") == "on",
                           form.get("download_extensions", ""))
    except goals.GoalError as exc:
        return render_settings(error=str(exc), status=400)
    site = g.site
    return settings_saved(_("Saved: counted from the next events on."), "site.counting",
                          f"{site.currency}; outbound links {'on' if site.outbound_links else 'off'}; "
                          f"downloads: {', '.join(site.download_extensions) or 'off'}", anchor="goals")


def _logged(goal: goals.Goal) -> str:
    """A goal as the audit log keeps it: in English, whatever language the page speaks."""
    with force_locale("en"):
        return f"{goal.name}: {goal.description}"
