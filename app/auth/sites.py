"""Creating and finding sites, and the rules about who may send them events."""
from __future__ import annotations

import re
import secrets
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.i18n import gettext as _, ngettext
from app.store.base import Site, Store

SITE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
MAX_DOMAINS = 50
MAX_BLOCKED_REFERRERS = 500
DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


class SiteError(ValueError):
    """A site that cannot be created as asked; the message says why."""


def normalise_domain(domain: str) -> str:
    """`https://www.Example.com/` -> `www.example.com`; raises SiteError when not a host name."""
    text = domain.strip().lower()
    host = urlsplit(text).hostname if "//" in text else text.split("/")[0].split(":")[0]
    if not host or not DOMAIN.match(host):
        raise SiteError(_("not a domain name: %(domain)s", domain=repr(domain)))
    return host


def _name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 100:
        raise SiteError(_("a site needs a name of 1 to 100 characters"))
    return name


def _domains(domains: list[str], at_least_one: bool = True, most: int = MAX_DOMAINS) -> list[str]:
    if at_least_one and not domains:
        raise SiteError(_("a site needs at least one domain"))
    if len(domains) > most:
        raise SiteError(ngettext("at most %(num)s domain", "at most %(num)s domains", most))
    return sorted({normalise_domain(d) for d in domains})


def _timezone(timezone: str) -> str:
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SiteError(_("unknown time zone: %(zone)s", zone=repr(timezone))) from exc
    return timezone


def create_site(store: Store, name: str, domains: list[str], now_ms: int,
                timezone: str = "UTC", site_id: str | None = None) -> Site:
    name, domains, timezone = _name(name), _domains(domains), _timezone(timezone)
    site_id = site_id or secrets.token_hex(4)
    if not SITE_ID.match(site_id):
        raise SiteError("a site id is 1-40 lowercase letters, digits and dashes")
    if store.get_site(site_id):
        raise SiteError(f"site {site_id!r} exists already")
    site = Site(site_id=site_id, name=name, tracker_key="pk_" + secrets.token_urlsafe(16),
                domains=domains, timezone=timezone, created_ms=now_ms, sources_changed_ms=0)
    store.create_site(site)
    return site


def edit_site(store: Store, site: Site, name: str, domains: list[str], timezone: str) -> Site:
    """A new name, domains or time zone. Days already rolled up stay in the zone they were
    counted in; new events count in the new one."""
    site.name, site.domains, site.timezone = _name(name), _domains(domains), _timezone(timezone)
    store.update_site(site)
    return site


def set_privacy(store: Store, site: Site, honour_dnt: bool, honour_gpc: bool,
                blocked_referrers: list[str]) -> Site:
    blocked = _domains(blocked_referrers, at_least_one=False, most=MAX_BLOCKED_REFERRERS)
    site.honour_dnt, site.honour_gpc, site.blocked_referrers = honour_dnt, honour_gpc, blocked
    store.update_site(site)
    return site


def origin_allowed(origin: str, domains: list[str]) -> bool:
    """An Origin header is allowed when its host is one of the domains or a subdomain of one."""
    try:
        host = urlsplit(origin).hostname or ""
    except ValueError:
        return False
    return any(host == d or host.endswith("." + d) for d in domains)


class SitesByKey:
    """Sites by tracker key, each kept for `ttl_ms`: every ingestion request looks its key up,
    and sites change rarely. A change (domains, privacy options, a deletion) reaches ingestion
    within ttl_ms; an unknown key is remembered too, so a flood of bad keys costs no reads."""

    def __init__(self, ttl_ms: int = 5_000, most: int = 10_000):
        self.ttl_ms, self.most = ttl_ms, most
        self._sites: dict[str, tuple[int, Site | None]] = {}

    def get(self, store: Store, tracker_key: str, now_ms: int) -> Site | None:
        kept = self._sites.get(tracker_key)
        if kept is None or now_ms >= kept[0]:
            if len(self._sites) >= self.most:
                self._sites.clear()
            kept = self._sites[tracker_key] = (now_ms + self.ttl_ms, store.get_site_by_key(tracker_key))
        return kept[1]

    def forget(self) -> None:
        """A site was changed here: this process reads sites again (others within ttl_ms)."""
        self._sites.clear()
