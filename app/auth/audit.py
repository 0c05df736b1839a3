"""The audit log: what was done to a site, by whom, for its owners and admins to read back
(privacy requests, keys, members, settings)."""
from __future__ import annotations

import secrets

from app.store.base import AuditEntry, Store

SHOWN = 100  # entries on the settings page


def record(store: Store, site_id: str, actor: str, action: str, detail: str, now_ms: int) -> AuditEntry:
    entry = AuditEntry(site_id, now_ms, secrets.token_hex(4), actor, action, detail)
    store.add_audit(entry)
    return entry
