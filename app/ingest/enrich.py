"""The steps ingestion runs on each event (pipeline.py lists them in order), and what they share.

A step is a small named function `step(event, request) -> None` that reads the event and the
request it came in (the site, the client, the time) and adds fields to the event. A step that
decides the event must not be kept raises `Dropped` with a `DropReason` (counted per site and
hour, shown under "Not counted"); one that finds it invalid raises marshmallow's
ValidationError (reported back to the sender).
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Iterable
from urllib.parse import parse_qs, urlsplit

import iptocc
import ua_parser
from crawlerdetect import CrawlerDetect
from marshmallow import ValidationError

from app.auth.sites import origin_allowed
from app.store.base import Site

from .schema import clean_text
from .sources import CLICK_IDS, NO_SITE_SOURCES, classify, site_sources

UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
MAX_DIMENSION = 256  # longest value kept for a dimension (source, campaign, path...)

class DropReason(str, Enum):
    """Why an event was deliberately not kept (or, for FAILED, not counted)."""
    BOT = "bot"  # a crawler, or no browser at all
    SPAM = "spam"  # a referrer spammer's "visit"
    GPC = "gpc"  # the browser sends Global Privacy Control and the site honours it
    DNT = "dnt"  # the browser sends Do Not Track and the site honours it
    FAILED = "failed"  # stored, but aggregating it failed: set aside (app/aggregation.py)


class Dropped(Exception):
    """An event deliberately not stored; its reason is counted per site and hour."""

    def __init__(self, reason: DropReason):
        super().__init__(reason.value)
        self.reason = reason


@dataclass(frozen=True)
class Client:
    """What the request says about the sender: never stored as is."""
    ip: str
    user_agent: str
    dnt: bool = False  # the browser sends Do Not Track (DNT: 1)
    gpc: bool = False  # the browser sends Global Privacy Control (Sec-GPC: 1)


@dataclass(frozen=True)
class Request:
    """One ingestion request around its events: the site, the sender, the time it arrived."""
    site: Site
    client: Client
    now_ms: int


# -- privacy signals
def honour_privacy_signals(event: dict, request: Request) -> None:
    """The visitor's browser asked not to be tracked and the site honours it: keep nothing."""
    site, client = request.site, request.client
    if site.honour_gpc and client.gpc:
        raise Dropped(DropReason.GPC)
    if site.honour_dnt and client.dnt:
        raise Dropped(DropReason.DNT)


# -- bots
_crawlers = CrawlerDetect()


@lru_cache(maxsize=4096)
def is_bot(user_agent: str) -> bool:
    if not user_agent.strip():
        return True
    return bool(_crawlers.isCrawler(user_agent))  # slow (~0.5 ms): cached per user agent


def drop_bots(event: dict, request: Request) -> None:
    if is_bot(request.client.user_agent):
        raise Dropped(DropReason.BOT)


# -- IP: the country is looked up from the full address, which is then masked
@lru_cache(maxsize=4096)
def country_of(raw_ip: str) -> str:
    """ISO 3166 alpha-2 country of an address from the database inside the iptocc package
    (nothing is downloaded at run time); "" when unknown (private, reserved, unparseable)."""
    try:
        return iptocc.country_code(raw_ip) or ""
    except ValueError:
        return ""


def lookup_country(event: dict, request: Request) -> None:
    event["country"] = country_of(request.client.ip)


def mask_ip(event: dict, request: Request) -> None:
    event["ip"] = masked_ip(request.client.ip)


IPV4_KEEP = ~0xFF  # zero the last octet
IPV6_KEEP = ~((1 << 80) - 1)  # zero the last 80 bits


@lru_cache(maxsize=1024)  # every event of a batch comes from one address
def masked_ip(raw: str) -> str:
    """IPv4: zero the last octet; IPv6: zero the last 80 bits. Unparseable: empty."""
    try:
        ip = ipaddress.ip_address(raw)
    except ValueError:
        return ""
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.version == 4:
        return str(ipaddress.IPv4Address(int(ip) & IPV4_KEEP))
    return str(ipaddress.IPv6Address(int(ip) & IPV6_KEEP))


# -- user agent
UNRECOGNISED = "Other"  # a browser or system ua-parser does not know (the dashboard translates it)


@lru_cache(maxsize=4096)
def describe_user_agent(user_agent: str) -> tuple[str, str, str]:
    """(browser, operating system, device type) from a user agent string. ua-parser's pure
    Python matcher takes ~0.7 ms per new user agent but ~26 MB less per process than its Rust
    one; traffic repeats user agents, so the cache answers almost every call."""
    result = ua_parser.parse(user_agent)
    browser = result.user_agent.family if result.user_agent else UNRECOGNISED
    os_name = result.os.family if result.os else UNRECOGNISED
    return browser, os_name, device_type(user_agent, os_name, result.device)


def device_type(user_agent: str, os_name: str, device) -> str:
    family = (device.family if device else "") or ""
    if "iPad" in family or "Tablet" in user_agent or (os_name == "Android" and "Mobile" not in user_agent):
        return "tablet"
    if os_name in ("iOS", "Android") or "Mobile" in user_agent or family in ("iPhone", "iPod"):
        return "mobile"
    return "desktop"


def parse_user_agent(event: dict, request: Request) -> None:
    event["browser"], event["os"], event["device"] = describe_user_agent(request.client.user_agent[:512])


# -- page and referrer
def split_url(event: dict, request: Request) -> None:
    parts = urlsplit(event["url"])
    event["hostname"] = (parts.hostname or "")[:MAX_DIMENSION]
    event["path"] = (parts.path or "/")[:MAX_DIMENSION]
    query = parse_qs(parts.query)
    for name in UTM_FIELDS:  # percent-decoded here: cleaned like any other text (%0D, %00, %E2%80%AE)
        event[name] = clean_text(query.get(name, [""])[0])[:MAX_DIMENSION]
    # Which ad's click id the landing page carries (its value names a click: never kept).
    event["click_id"] = next((name for name in CLICK_IDS if name in query), "") if query else ""


def classify_referrer(event: dict, request: Request) -> None:
    """Source and channel of the event (sources.py), by the site's own rules when it has some."""
    _classify(event, _rules(request.site))


def _rules(site: Site) -> tuple:
    return tuple((rule["host"], rule["name"], rule["channel"]) for rule in site.sources)


def _classify(event: dict, rules: tuple) -> None:
    try:
        referrer = urlsplit(event["referrer"]) if event["referrer"] else None
        host = (referrer.hostname or "") if referrer else ""
    except ValueError:
        host = ""
    host = host.removeprefix("www.")
    if host and host == event["hostname"].removeprefix("www."):
        host = ""  # navigation inside the site is not a source
    event["referrer_host"] = host  # for the site's rules; not stored
    event["referrer"] = event["referrer"] if host else ""
    source, event["channel"] = classify(
        host, referrer.path if host else "", event["utm_source"], event["utm_medium"], event["utm_campaign"],
        event["click_id"], site_sources(rules) if rules else NO_SITE_SOURCES)
    event["source"] = source[:MAX_DIMENSION]


def first_visit(event: dict, request: Request) -> None:
    """The visitor's cohort: when the tracker made their id (`first`), and the source and
    channel of that first visit, classified from its landing page and referrer as any visit's
    are; and when this browser's previous event was (`prev`). Neither names the visitor."""
    event["prev_ms"] = event.get("prev")
    first = event.get("first")
    if first:
        created_ms, url, referrer = first
        event["first_ms"] = min(created_ms, event["timestamp"])
        event["first_source"], event["first_channel"] = _first_source(url, referrer, _rules(request.site))


@lru_cache(maxsize=4096)  # every event of a visitor carries the same first visit
def _first_source(url: str, referrer: str, rules: tuple) -> tuple[str, str]:
    landing = {"url": url, "referrer": referrer}
    try:
        split_url(landing, None)
    except ValueError:  # not a URL: its host, UTM parameters and click id are unknown
        landing.update(dict.fromkeys(UTM_FIELDS, ""), hostname="", click_id="")
    _classify(landing, rules)
    return landing["source"], landing["channel"]


def warm_up() -> None:
    """Compile the parsers' patterns (about 0.15 s) before the first request needs them."""
    probe = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"
    is_bot(probe)
    describe_user_agent(probe)


# -- the site's rules
def page_on_site(event: dict, request: Request) -> None:
    """The tracker key is public: a page on another site sending with it is refused."""
    if not origin_allowed(f"//{event['hostname']}", request.site.domains):
        raise ValidationError({"url": [f"{event['hostname']} is not one of the site's domains"]})


REFERRER_SPAM = frozenset(
    line.strip() for line in (Path(__file__).with_name("referrer_spam.txt")).read_text().splitlines()
    if line.strip() and not line.startswith("#"))


def is_spam_referrer(host: str, blocked: Iterable[str] = ()) -> bool:
    """The host, or a domain it belongs to, is a known referrer spammer or blocked by the site."""
    parts = host.split(".")
    suffixes = {".".join(parts[i:]) for i in range(len(parts) - 1)}
    return not suffixes.isdisjoint(REFERRER_SPAM) or not suffixes.isdisjoint(blocked)


def drop_referrer_spam(event: dict, request: Request) -> None:
    if event["referrer_host"] and is_spam_referrer(event["referrer_host"], request.site.blocked_referrers):
        raise Dropped(DropReason.SPAM)
