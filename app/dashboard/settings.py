"""Managing sites: adding one, its settings page (the site, snippet, members, public links,
API keys, privacy, audit log) and deleting it. API keys and privacy requests have their own
modules (keys.py, privacy.py); this one renders the page they all answer with.

Site pages go through the blueprint's access check (app/auth/access.py): `needs_role` says the
role each one needs; the public links' /share URLs never reach these views.
"""
from __future__ import annotations

import re
from zoneinfo import available_timezones

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for

from app.analytics.goals import GOAL_KINDS, goals_of
from app.auth import api_keys, audit, links, members
from app.auth.access import current_user, login_required, needs_role
from app.auth.sites import SiteError, create_site, edit_site
from app.auth.users import AccountError, at_least
from app.context import get_store, now_ms
from app.i18n import gettext as _, lazy_gettext as _l
from app.store.base import ROLES, Membership

from . import first_run
from .views import bp

TIMEZONES = sorted(available_timezones())
# What the page calls each role (ROLES are codes: the forms send them, the audit log keeps them).
ROLE_NAMES = {"owner": _l("owner"), "admin": _l("admin"), "viewer": _l("viewer")}


def domain_list(text: str) -> list[str]:
    """Domains typed one per line, or separated by commas or spaces."""
    return [d for d in re.split(r"[\s,]+", text) if d]


def actor() -> str:
    """Who the audit log says did it."""
    return current_user().email


def settings_saved(message: str, action: str, detail: str, anchor: str | None = None):
    """Record a change in the audit log, say so, and show the settings again (at `anchor`)."""
    current_app.extensions["liveinsight.sites_by_key"].forget()  # ingestion reads the site again
    audit.record(get_store(), g.site.site_id, actor(), action, detail, now_ms())
    flash(message)
    return redirect(url_for("dashboard.site_settings", site_id=g.site.site_id, _anchor=anchor))


@bp.route("/sites/new", methods=["GET", "POST"])
@login_required
def new_site():
    """Any user may add a site; they become its owner."""
    error = None
    if request.method == "POST":
        form = request.form
        try:
            site = create_site(get_store(), form.get("name", ""), domain_list(form.get("domains", "")), now_ms(),
                               form.get("timezone", "UTC").strip() or "UTC")
        except SiteError as exc:
            error = str(exc)
        else:
            get_store().put_membership(Membership(site.site_id, current_user().user_id, "owner", now_ms()))
            audit.record(get_store(), site.site_id, actor(), "site.create", site.name, now_ms())
            flash(_("Site %(name)s created. Paste the snippet below into your pages.", name=repr(site.name)))
            return redirect(url_for("dashboard.site_settings", site_id=site.site_id))
    return render_template("pages/site_new.html", error=error, timezones=TIMEZONES), 400 if error else 200


def render_settings(error: str | None = None, status: int = 200, **shown_once):
    """The settings page; `shown_once` holds a new secret (new_link_url, new_api_key) that this
    answer shows and nothing stores."""
    store, now = get_store(), now_ms()
    site_members = [(m, store.get_user(m.user_id)) for m in store.site_members(g.site.site_id)]
    return render_template(
        "pages/site_settings.html", site=g.site, role=g.role, roles=ROLES, role_names=ROLE_NAMES, error=error,
        members=[(m, u) for m, u in site_members if u], invitations=store.site_invitations(g.site.site_id),
        timezones=TIMEZONES,
        links=store.list_public_links(g.site.site_id) if at_least(g.role, "owner") else [],
        keys=[(k, api_keys.state(k, now)) for k in store.list_api_keys(g.site.site_id)],
        audit_log=store.list_audit(g.site.site_id, audit.SHOWN),
        snippet=first_run.snippet(g.site), goals=goals_of(g.site),
        goal_kinds=GOAL_KINDS, **shown_once,
    ), status


@bp.get("/sites/<site_id>/settings")
@needs_role("admin")
def site_settings(site_id: str):
    return render_settings()


@bp.post("/sites/<site_id>/settings")
@needs_role("admin")
def edit_site_settings(site_id: str):
    form = request.form
    try:
        edit_site(get_store(), g.site, form.get("name", ""), domain_list(form.get("domains", "")),
                  form.get("timezone", "").strip())
    except SiteError as exc:
        return render_settings(error=str(exc), status=400)
    return settings_saved(_("Site saved."), "site.update",
                          f"{g.site.name}; {', '.join(g.site.domains)}; {g.site.timezone}")


@bp.post("/sites/<site_id>/members")
@needs_role("admin")
def invite_member(site_id: str):
    """Invite an email: the answer is the same whether or not it has an account."""
    email, role = request.form.get("email", ""), request.form.get("role", "viewer")
    try:
        invitation = members.invite(get_store(), site_id, email, role, g.role, actor(), now_ms())
    except members.NotAllowed as exc:
        abort(403, str(exc))
    except AccountError as exc:
        return render_settings(error=str(exc), status=400)
    return settings_saved(
        _("Invitation saved for %(email)s (%(role)s): they see it on their sites page when they log in with that "
          "email (an instance admin creates accounts under Users).",
          email=invitation.email, role=ROLE_NAMES.get(invitation.role, invitation.role)),
        "member.invite", f"{invitation.email}: {invitation.role}")


@bp.post("/sites/<site_id>/invitations/cancel")
@needs_role("admin")
def cancel_invitation(site_id: str):
    invitation = get_store().get_invitation(site_id, request.form.get("email", ""))
    if invitation is None:
        abort(404, _("no such invitation on this site"))
    members.cancel_invitation(get_store(), site_id, invitation.email)
    return settings_saved(_("Invitation cancelled."), "member.uninvite", invitation.email)


@bp.post("/sites/<site_id>/members/<user_id>/role")
@needs_role("admin")
def set_member_role(site_id: str, user_id: str):
    try:
        membership = members.set_role(get_store(), site_id, user_id, request.form.get("role", ""), g.role)
    except members.NotAllowed as exc:
        abort(403, str(exc))
    except AccountError as exc:
        return render_settings(error=str(exc), status=400)
    user = get_store().get_user(user_id)
    return settings_saved(_("Role changed."), "member.set", f"{user.email if user else user_id}: {membership.role}")


@bp.post("/sites/<site_id>/members/<user_id>/remove")
@needs_role("admin")
def remove_site_member(site_id: str, user_id: str):
    try:
        members.remove(get_store(), site_id, user_id, g.role)
    except members.NotAllowed as exc:
        abort(403, str(exc))
    except AccountError as exc:
        return render_settings(error=str(exc), status=400)
    user = get_store().get_user(user_id)
    return settings_saved(_("Member removed."), "member.remove", user.email if user else user_id)


@bp.post("/sites/<site_id>/links")
@needs_role("owner")
def create_public_link(site_id: str):
    link, token = links.create_link(get_store(), site_id, request.form.get("label", ""),
                                    current_user().user_id, now_ms())
    audit.record(get_store(), site_id, actor(), "link.create", link.label, now_ms())
    # Shown once, in this answer only: the store keeps only the token's hash.
    return render_settings(new_link_url=url_for("dashboard.overview", token=token, _external=True))


@bp.post("/sites/<site_id>/links/<token_hash>/revoke")
@needs_role("owner")
def revoke_public_link(site_id: str, token_hash: str):
    link = get_store().get_public_link(token_hash)
    if link is None or link.site_id != site_id:
        abort(404, _("no such link on this site"))
    get_store().revoke_public_link(token_hash, now_ms())
    return settings_saved(_("Link revoked: it no longer opens the dashboard."), "link.revoke", link.label)


@bp.post("/sites/<site_id>/delete")
@needs_role("owner")
def delete_site(site_id: str):
    if request.form.get("confirm", "").strip() != site_id:
        return render_settings(error=_("Type the site id (%(site_id)s) to confirm the deletion.", site_id=site_id),
                               status=400)
    get_store().delete_site(site_id)
    current_app.extensions["liveinsight.sites_by_key"].forget()
    flash(_("Site %(name)s and all its data deleted.", name=repr(g.site.name)))
    return redirect(url_for("dashboard.index"))
