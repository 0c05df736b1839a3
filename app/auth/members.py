"""Who has which role on a site: invitations, members' roles, and the rules about owners.

Someone joins a site only by accepting an invitation made for their email, so nobody is put
on a site without consent, and inviting an email says nothing about whether it has an
account (the answer is the same either way). The operator's CLI adds members directly.
Admins manage viewers and admins; only an owner may grant, change or remove the owner role,
and a site always keeps one owner.
"""
from __future__ import annotations

from app.i18n import gettext as _
from app.store.base import ROLES, Invitation, Membership, Store, User

from .users import AccountError, at_least, normalise_email


class NotAllowed(AccountError):
    """The acting role may not do this (403)."""


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise AccountError(_("unknown role %(role)s: use one of %(roles)s",
                             role=repr(role), roles=", ".join(ROLES)))


def _may_touch(acting_role: str, *roles: str | None) -> None:
    """Granting, changing or removing the owner role needs the owner role."""
    if "owner" in roles and not at_least(acting_role, "owner"):
        raise NotAllowed(_("only an owner can grant, change or remove the owner role"))


def invite(store: Store, site_id: str, email: str, role: str, acting_role: str, invited_by: str,
           now_ms: int) -> Invitation:
    """Offer `role` to whoever logs in with `email` (replacing an earlier offer)."""
    _check_role(role)
    _may_touch(acting_role, role)
    invitation = Invitation(site_id, normalise_email(email), role, invited_by, now_ms)
    store.put_invitation(invitation)
    return invitation


def cancel_invitation(store: Store, site_id: str, email: str) -> None:
    store.delete_invitation(site_id, email)


def accept(store: Store, user: User, site_id: str, now_ms: int) -> Membership:
    """Join the site as the invitation for the user's email says; an invitation never lowers a
    role the user has already."""
    invitation = store.get_invitation(site_id, user.email)
    if invitation is None:
        raise AccountError(_("no invitation to this site for your email (it may have been cancelled)"))
    current = store.get_membership(site_id, user.user_id)
    role = current.role if current and at_least(current.role, invitation.role) else invitation.role
    membership = Membership(site_id, user.user_id, role, current.created_ms if current else now_ms)
    store.put_membership(membership)
    store.delete_invitation(site_id, user.email)
    return membership


def decline(store: Store, user: User, site_id: str) -> None:
    store.delete_invitation(site_id, user.email)


def set_role(store: Store, site_id: str, user_id: str, role: str, acting_role: str) -> Membership:
    """A member's new role."""
    _check_role(role)
    current = store.get_membership(site_id, user_id)
    if current is None:
        raise AccountError(_("not a member of this site"))
    _may_touch(acting_role, current.role, role)
    if current.role == "owner" and role != "owner":
        _keep_an_owner(store, site_id, user_id)
    membership = Membership(site_id, user_id, role, current.created_ms)
    store.put_membership(membership)
    return membership


def remove(store: Store, site_id: str, user_id: str, acting_role: str) -> Membership:
    current = store.get_membership(site_id, user_id)
    if current is None:
        raise AccountError(_("not a member of this site"))
    _may_touch(acting_role, current.role)
    if current.role == "owner":
        _keep_an_owner(store, site_id, user_id)
    store.delete_membership(site_id, user_id)
    return current


def add_member(store: Store, site_id: str, email: str, role: str, now_ms: int) -> Membership:
    """The operator's way (CLI): give an existing user a role at once, no invitation."""
    _check_role(role)
    user = store.get_user_by_email(normalise_email(email))
    if user is None:
        raise AccountError(f"no user with the email {email!r}")
    current = store.get_membership(site_id, user.user_id)
    if current and current.role == "owner" and role != "owner":
        _keep_an_owner(store, site_id, user.user_id)
    membership = Membership(site_id, user.user_id, role, current.created_ms if current else now_ms)
    store.put_membership(membership)
    return membership


def _keep_an_owner(store: Store, site_id: str, leaving_user_id: str) -> None:
    owners = [m for m in store.site_members(site_id) if m.role == "owner" and m.user_id != leaving_user_id]
    if not owners:
        raise AccountError(_("a site keeps at least one owner: make someone else owner first"))
