"""GDPR requests about one visitor of a site: a copy of what is stored about them (access)
and its deletion (erasure), each recorded in the site's audit log.

A visitor is the tracker's id (`user_id`, kept in their browser's localStorage; a site can
show it to the visitor with `liveinsight.visitorId()`). What names a visitor is kept 24 hours
(raw events, visits, the visitor record); counters hold no id and the unique-visitor
sketches only hash bits from which no id can be read back (docs/privacy.md). The audit log
keeps a fingerprint of the id, not the id: it proves the request without keeping who it was.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict
from datetime import datetime, timezone

from app.auth import audit
from app.i18n import gettext as _
from app.store.base import Site, Store

MAX_VISITOR_ID = 64  # as the ingestion schema takes them


class PrivacyError(ValueError):
    """A request that cannot be done as asked; the message says why."""


def visitor_fingerprint(user_id: str) -> str:
    return hashlib.sha256(user_id.encode()).hexdigest()[:12]


def _checked(user_id: str) -> str:
    user_id = user_id.strip()
    if not 1 <= len(user_id) <= MAX_VISITOR_ID:
        raise PrivacyError(_("a visitor id has 1 to %(most)s characters", most=MAX_VISITOR_ID))
    return user_id


def export_visitor(store: Store, site: Site, user_id: str, actor: str, now_ms: int) -> dict:
    """Everything stored that names the visitor, as a JSON-ready document."""
    user_id = _checked(user_id)
    data = store.visitor_data(site.site_id, user_id)
    audit.record(store, site.site_id, actor, "visitor.export",
                 f"visitor {visitor_fingerprint(user_id)}: {len(data.events)} events, {len(data.sessions)} visits",
                 now_ms)
    return {
        "site": site.site_id, "visitor_id": user_id,
        "exported_at": datetime.fromtimestamp(now_ms / 1000, timezone.utc).isoformat(),
        "kept": "raw events and visits are kept 24 hours; counters hold no visitor id",
        "events": data.events,
        "visits": [asdict(s) for s in data.sessions],
        "visitor": asdict(data.visitor) if data.visitor else None,
    }


def erase_visitor(store: Store, site: Site, user_id: str, actor: str, now_ms: int) -> dict[str, int]:
    """Delete what names the visitor; returns how many events, visits and records went."""
    user_id = _checked(user_id)
    deleted = store.erase_visitor(site.site_id, user_id)
    audit.record(store, site.site_id, actor, "visitor.erase",
                 f"visitor {visitor_fingerprint(user_id)}: " + ", ".join(f"{n} {what}" for what, n in deleted.items()),
                 now_ms)
    return deleted
