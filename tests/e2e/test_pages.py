"""Every page a person sees, audited in a real browser at a phone's and a desk's size.

For each page of PAGES at each size of VIEWPORTS, with a site that has three days of demo
traffic sent through the real ingestion pipeline and folded by the server's own aggregator
(with each visitor's first visit and carry, as the tracker sends them, for the retention page and
the funnel across visits; plus the demo goals, its two funnels, a public link and a second site
with no data yet):

- a full-page screenshot, artifacts/page-<name>-<viewport>.png;
- nothing wider than the window (document.documentElement.scrollWidth <= innerWidth); a
  failure names the elements that stick out furthest;
- no console error and no uncaught error;
- no Content-Security-Policy violation (the `securitypolicyviolation` events, recorded by an
  init script, and Chromium's "Refused to ..." console messages);
- no axe-core violation of impact "serious" or "critical".

Each test reports every problem it finds at once (not the first): the message is the list.

`prepare(context)` and `audit(page)` are for other tests too: prepare a context before opening
its pages, and call `audit(page)` after an interaction (a tab opened, a form sent) for the list
of problems found since the last audit.

axe-core is injected with `page.evaluate`, which goes through the DevTools protocol and is not
subject to the page's CSP ("script-src 'self'", no inline script): `add_script_tag(content=...)`
inserts an inline <script> that the CSP refuses (and would be reported as a violation).
"""
from __future__ import annotations

import re
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Error as PlaywrightError, expect

from app import create_app, seed
from app.aggregation import Background
from app.analytics import funnels, goals
from app.auth import links
from app.auth.sites import create_site
from app.auth.views import setup_token
from app.clock import SystemClock
from app.store.base import DAY_MS, User
from app.store.sqlite import SQLiteStore
from tests.conftest import ADMIN_PASSWORD_HASH

from .conftest import ADMIN_EMAIL, DESKTOP_CHROME_UA, HERE, LiveServer, log_in, wait_until

# -- what is audited
ADMIN, ANONYMOUS, FIRST_RUN = "admin", "anonymous", "first-run"  # who opens the page


class Page(NamedTuple):
    name: str
    path: Callable[["Seeded"], str]  # the path (and query) on the server, from what was seeded
    login: str  # ADMIN: logged in as the instance admin; ANONYMOUS; FIRST_RUN: a server with no user yet
    status: int = 200


# The URLs as the app has them: when the redesign renames a route, change it here only.
# (Before the redesign, /sites/<id> was the realtime page and /sites/<id>/reports the reports;
# the overview now is both the reports and the first run, and /reports redirects to it.)
PAGES = [
    Page("login", lambda s: "/login", ANONYMOUS),
    Page("setup", lambda s: f"/setup?token={s.setup_token}", FIRST_RUN),
    Page("sites", lambda s: "/", ADMIN),  # two sites: the list, not a redirect to the only one
    Page("overview-30d", lambda s: f"/sites/{s.site_id}?period=30d", ADMIN),
    Page("overview-today", lambda s: f"/sites/{s.site_id}?period=today", ADMIN),
    Page("overview-page", lambda s: f"/sites/{s.site_id}?period=30d&page=/pricing", ADMIN),
    Page("realtime", lambda s: f"/sites/{s.site_id}/realtime", ADMIN),
    Page("settings", lambda s: f"/sites/{s.site_id}/settings", ADMIN),
    Page("alerts", lambda s: f"/sites/{s.site_id}/alerts", ADMIN),  # rules, a webhook, what fired
    Page("unsubscribe", lambda s: f"/unsubscribe/{s.unsubscribe_token}", ANONYMOUS),  # a report's link
    Page("new-site", lambda s: "/sites/new", ADMIN),
    Page("account", lambda s: "/account", ADMIN),
    Page("users", lambda s: "/users", ADMIN),
    Page("share", lambda s: f"/share/{s.share_token}", ANONYMOUS),
    Page("funnels", lambda s: f"/sites/{s.site_id}/funnels?period=7d", ADMIN),
    Page("funnels-by-source", lambda s: f"/sites/{s.site_id}/funnels?period=7d&funnel_breakdown=source", ADMIN),
    Page("funnels-on-phones", lambda s: f"/sites/{s.site_id}/funnels?period=7d&device=mobile", ADMIN),  # visitors by value
    Page("funnels-across-visits", lambda s: f"/sites/{s.site_id}/funnels?period=7d&funnel={_across_visits(s)}", ADMIN),
    Page("funnels-none", lambda s: f"/sites/{s.empty_site_id}/funnels", ADMIN),  # what a funnel is, and the form
    Page("journeys", lambda s: f"/sites/{s.site_id}/journeys?period=7d", ADMIN),
    Page("retention", lambda s: f"/sites/{s.site_id}/retention", ADMIN),
    Page("share-funnels", lambda s: f"/share/{s.share_token}/funnels?period=7d", ANONYMOUS),
    Page("share-journeys", lambda s: f"/share/{s.share_token}/journeys?period=7d&paths=5", ANONYMOUS),
    Page("demo", lambda s: "/demo", ANONYMOUS),
    Page("not-found", lambda s: "/no-such-page", ADMIN, status=404),
    Page("empty-site", lambda s: f"/sites/{s.empty_site_id}", ADMIN),  # a new site: its first run
]
# Phone: a touch screen with the desktop user agent (the ingestion bot filter drops headless
# ones), at scale 1 to keep screenshots small.
VIEWPORTS = {
    "phone": dict(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, device_scale_factor=1),
    "desktop": dict(viewport={"width": 1440, "height": 900}),
}
BAD_IMPACTS = ("serious", "critical")
DAYS, VISITS_PER_DAY = 3, 300  # about 6,000 events: every report has rows
SETTLE_MS = 5_000  # at most this long for the network to go quiet after load (htmx polls every 3+ s)
AXE = sorted((HERE / "vendor").glob("axe-core-*.min.js"))


# -- the audit, reusable by other tests
CSP_INIT_SCRIPT = """(() => {
  if (window.__auditCsp) return;
  window.__auditCsp = [];
  document.addEventListener('securitypolicyviolation', e => window.__auditCsp.push({
    directive: e.effectiveDirective || e.violatedDirective, blocked: e.blockedURI,
    source: e.sourceFile, line: e.lineNumber, sample: e.sample}), true);
})();"""

OVERFLOW_JS = """width => {
  const limit = Math.min(window.innerWidth, width);
  const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
      [...el.classList].slice(0, 3).map(c => '.' + c).join('');
  const selector = el => {
    const parts = [];
    for (let e = el; e && e !== document.body && parts.length < 3; e = e.parentElement) {
      parts.unshift(name(e));
      if (e.id) break;
    }
    return parts.join(' > ');
  };
  // An element inside a scroll or clip box that fits the window does not widen the page.
  const clipped = el => {
    for (let e = el.parentElement; e && e !== document.body; e = e.parentElement) {
      const o = getComputedStyle(e).overflowX;
      if (o !== 'visible' && e.getBoundingClientRect().right <= limit + 0.5) return true;
    }
    return false;
  };
  const offenders = [];
  for (const el of document.body ? document.body.querySelectorAll('*') : []) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.right <= limit + 0.5 || clipped(el)) continue;
    offenders.push({selector: selector(el), right: Math.round(r.right), width: Math.round(r.width)});
  }
  offenders.sort((a, b) => b.right - a.right || b.width - a.width);
  return {scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
          limit, offenders: offenders.slice(0, 5), metaViewport: !!document.querySelector('meta[name=viewport]')};
}"""

AXE_RUN_JS = """async impacts => {
  const results = await axe.run(document, {resultTypes: ['violations']});
  return results.violations.filter(v => impacts.includes(v.impact)).map(v => ({
    id: v.id, impact: v.impact, help: v.help, count: v.nodes.length,
    targets: v.nodes.slice(0, 3).map(n => n.target.map(String).join(' '))}));
}"""


@dataclass
class _Watch:
    """What a page reported since the last audit."""
    console_errors: list[str] = field(default_factory=list)
    csp_messages: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    error_documents: set[str] = field(default_factory=set)  # pages served with a 4xx/5xx status on purpose


_WATCHES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def watch(page) -> None:
    """Listen to a page's console, errors and documents (idempotent); prepare() does it for
    every page of a context. Playwright delivers events only while the test is inside a
    Playwright call: audit() makes some before reading them."""
    if page in _WATCHES:
        return
    seen = _WATCHES[page] = _Watch()

    def on_console(message):
        if message.type != "error":
            return
        text = message.text
        if "Content Security Policy" in text:
            seen.csp_messages.append(text)
        elif text.startswith("Failed to load resource") and message.location.get("url") in seen.error_documents:
            pass  # the document's own status (a 404 page): the test checks the status it expects
        else:
            where = message.location.get("url", "")
            seen.console_errors.append(f"{text} ({where}:{message.location.get('lineNumber', '?')})"
                                       if where else text)

    def on_response(response):
        if response.status >= 400 and response.request.is_navigation_request():
            seen.error_documents.add(response.url)

    page.on("console", on_console)
    page.on("pageerror", lambda error: seen.page_errors.append(str(error)))
    page.on("response", on_response)


def prepare(context) -> None:
    """Record CSP violations in every page of the context (an init script, which runs through
    the DevTools protocol, so the page's CSP does not stop it), and watch() each page."""
    context.add_init_script(script=CSP_INIT_SCRIPT)
    context.on("page", watch)
    for page in context.pages:
        watch(page)


def _axe_source() -> str:
    if not AXE:
        pytest.fail(f"axe-core is not vendored: no {HERE / 'vendor'}/axe-core-<version>.min.js", pytrace=False)
    return AXE[-1].read_text()


def audit(page, *, axe: bool = True) -> list[str]:
    """The problems a person would meet on the page as it is now: horizontal overflow, console
    and uncaught errors, CSP violations, serious and critical axe-core violations. Errors and
    violations are those since the previous audit of the page (or since it opened). The page's
    context should have been prepare()d before the page opened: errors before watch() are lost."""
    watch(page)
    seen = _WATCHES[page]
    problems: list[str] = []
    width = (page.viewport_size or {}).get("width") or 100_000
    layout = page.evaluate(OVERFLOW_JS, width)
    if layout["scrollWidth"] > layout["limit"]:
        worst = "; ".join(f"{o['selector']} (right {o['right']}px, width {o['width']}px)" for o in layout["offenders"])
        problems.append(f"overflow: the page is {layout['scrollWidth']}px wide in a {layout['limit']}px window"
                        f" (innerWidth {layout['innerWidth']}"
                        f"{'' if layout['metaViewport'] else '; no <meta name=viewport>: a phone lays it out 980px wide'})"
                        f"; furthest out: {worst or 'none found'}")
    csp = page.evaluate("() => { const v = window.__auditCsp; if (v) window.__auditCsp = []; return v; }")
    if csp is None:
        problems.append("csp: not recorded (the context was not prepare()d before the page opened)")
    for v in csp or []:
        sample = f" sample {v['sample']!r}" if v.get("sample") else ""
        problems.append(f"csp: {v['directive']} blocked {v['blocked'] or '?'} at {v['source'] or '?'}:{v['line']}"
                        f"{sample}")
    if axe:
        if not page.evaluate("() => typeof window.axe === 'object'"):
            # A function body (not an inline <script>), so the page's CSP does not apply.
            page.evaluate("() => {\n" + _axe_source() + "\n}")
        for v in page.evaluate(AXE_RUN_JS, list(BAD_IMPACTS)):
            problems.append(f"axe {v['impact']}: {v['id']}: {v['help']} ({v['count']} elements: "
                            f"{', '.join(v['targets'])})")
    problems += [f"csp (console): {m[:300]}" for m in seen.csp_messages]
    problems += [f"console error: {m[:300]}" for m in seen.console_errors]
    problems += [f"uncaught error: {m[:300]}" for m in seen.page_errors]
    seen.console_errors.clear()
    seen.csp_messages.clear()
    seen.page_errors.clear()
    return problems


def settle(page) -> None:
    """Load done, fonts in, the network quiet for a moment (htmx polls: not for long)."""
    try:
        page.wait_for_load_state("networkidle", timeout=SETTLE_MS)
    except PlaywrightError:
        pass  # something polls without a pause: audit the page as it is
    page.evaluate("() => document.fonts.ready.then(() => true)")


# -- the data: one server per module, seeded once
def _across_visits(seeded: "Seeded") -> str:
    """The id of the demo's funnel across visits (seed.demo_funnels' second)."""
    return funnels.funnels_of(seeded.server.store.get_site(seeded.site_id))[1].id


@dataclass
class Seeded:
    server: LiveServer
    site_id: str
    empty_site_id: str
    share_token: str
    setup_token: str
    admin_state: dict  # the logged-in admin's cookies (a context's storage_state)
    first_run: Callable[[], LiveServer]  # a server with no user yet, started on first use
    unsubscribe_token: str  # the admin's weekly report's
    data_words: set[str]  # the words of the seeded data (english_left)


def with_first_visits(visits: list[seed.Visit]) -> list[seed.Visit]:
    """The visits with what a tracker adds to each event: its visitor's first visit (when, where
    it landed, from where) and when the browser sent its previous event, for the retention page."""
    first: dict[str, list] = {}
    last: dict[str, int] = {}
    for visit in visits:  # in start order
        for event in visit.events:
            user = event["user_id"]
            event["first"] = first.setdefault(user, [event["timestamp"], event["url"], event["referrer"]])
            event["prev"] = last.get(user)
            last[user] = event["timestamp"]
    return visits


def with_alerts(store, site, now: int) -> None:
    """Alert rules, a webhook, and a history of what fired, as the rules would have said it."""
    from app.alerts import messages, settings as alert_settings
    from app.alerts.goal_rules import GoalCheck
    from app.alerts.traffic import TrafficCheck
    alert_settings.set_traffic(store, site, True, "normal", "20", "3")
    choices = alert_settings.goal_choices(site, ["Purchase"])
    sale = alert_settings.add_goal_rule(store, site, "reached", "c:Purchase", "1", "", "", "", choices)
    alert_settings.add_goal_rule(store, site, "silence", "", "", "2", "9", "18", choices)
    alert_settings.add_webhook(store, site, "https://hooks.slack.com/services/T0/B0/abcdef", "slack", now,
                               allow_private=False)
    pages = {"/blog/a-very-long-article-title-that-someone-shared-on-a-news-site": 40, "/": 1}
    spike = messages.traffic_alert(site, TrafficCheck(122, 31.5, 4, "spike", now - 85 * 60_000), pages,
                                   {"Hacker News": 40, "Google": 1}, now - 3_600_000)
    spike.deliveries = [{"channel": "webhook hooks.slack.com", "ok": True, "detail": "HTTP 200", "attempts": 1}]
    store.add_alert(spike)
    first = messages.goal_alert(site, sale, "Purchase", GoalCheck(True, 0, count=1), now - 7_200_000)
    first.deliveries = [{"channel": "webhook hooks.slack.com", "ok": False, "attempts": 4,
                         "detail": "HTTP 503 after 4 attempts"}]
    store.add_alert(first)
    alert_settings.mute(store, site, "168", now)  # what fires while the tests run is listed, and sent nowhere
    alert_settings.subscribe_report(store, site, "admin-1", "weekly", True)


def _serve(tmp: Path, with_admin: bool):
    store = SQLiteStore(str(tmp / "liveinsight.db"))
    store.create_schema()
    app = create_app({"STORE_URL": f"sqlite:///{tmp / 'liveinsight.db'}", "SECRET_KEY": "e2e-secret"},
                     store=store, clock=SystemClock())
    now = app.extensions["liveinsight.clock"].now_ms()
    site = create_site(store, "Acme Widgets (e2e)", ["acme.example", "127.0.0.1", "localhost"],
                       now - (DAYS + 1) * DAY_MS, site_id=app.config["DEMO_SITE_ID"])
    if with_admin:
        store.create_user(User("admin-1", ADMIN_EMAIL, ADMIN_PASSWORD_HASH, now, is_admin=True))
    return app, store, site, now


@pytest.fixture(scope="module")
def seeded(tmp_path_factory, browser):
    app, store, site, now = _serve(tmp_path_factory.mktemp("pages"), with_admin=True)
    for goal in seed.DEMO_GOALS:  # before the traffic, so they count all of it
        goals.add_goal(store, site, *goal, now - DAYS * DAY_MS - 60_000)
    for name, steps, window_days in seed.demo_funnels(site):
        funnels.add_funnel(store, site, funnels.new_funnel(site, name, steps, now - DAYS * DAY_MS - 60_000, window_days))
    empty = create_site(store, "Side project (no data yet)", ["side.example"], now)
    with app.app_context():
        with_alerts(store, site, now)
    _, share_token = links.create_link(store, site.site_id, "Team TV", "admin-1", now)
    with app.app_context():
        token = setup_token()  # the same SECRET_KEY as the first-run server's

    server = LiveServer(app, store, site)
    background = Background(app).start()  # the real aggregator thread, as in conftest's live_server
    server.start()
    first_run: list = []
    try:
        # Demo traffic through the real pipeline, at the times it would have arrived; the
        # server's aggregator folds it (seed.seed would fold it on this thread too).
        visits = with_first_visits(seed.plan_visits(site, DAYS, now, VISITS_PER_DAY))
        words = data_words(site, visits)
        carries: dict[str, str] = {}
        for arrival_ms, client, events in seed.tracker_batches(visits, now):
            seed.record_carried(store, site, events, client, arrival_ms, carries)
        wait_until(lambda: not store.read_log(1), 60, "the aggregator never folded the seeded traffic")

        context = browser.new_context(user_agent=DESKTOP_CHROME_UA)
        try:
            log_in(context, server)
            admin_state = context.storage_state()
        finally:
            context.close()

        def start_first_run() -> LiveServer:
            if not first_run:
                fresh_app, fresh_store, fresh_site, _ = _serve(tmp_path_factory.mktemp("first-run"), with_admin=False)
                fresh = LiveServer(fresh_app, fresh_store, fresh_site)
                fresh.start()
                first_run.append(fresh)
            return first_run[0]

        from app.alerts.reports import unsubscribe_token
        stop = unsubscribe_token(app.config["SECRET_KEY"], site.site_id, "admin-1", "weekly")
        yield Seeded(server, site.site_id, empty.site_id, share_token, token, admin_state, start_first_run, stop, words)
    finally:
        for fresh in first_run:
            fresh.stop()
            fresh.store.close()
        server.stop()
        background.close()
        store.close()


# -- English left on a page in another language
# What a translated page may still show in Latin letters: its data (site, goal, funnel and link
# names, pages, sources, browsers: as the seeded traffic has them), names that stay names
# (brands, standards, codes), and code (in <code>, <pre>, <kbd> and <samp>, not read here).
NAMES = {"LiveInsight", "UTM", "CSV", "API", "JSON", "URL", "HTTP", "HTTPS", "HTML", "AI", "OS", "IP", "ID", "SMS",
         "UTC", "EUR", "GDPR", "AWS", "Amazon", "SNS", "README", "Slack", "Discord", "WordPress", "WPCode", "React",
         "Vue", "Next", "History", "Chrome", "Safari", "Firefox", "Edge", "Windows", "Mac", "iOS", "Android", "Linux",
         "Brave", "Global", "Privacy", "Control", "Do", "Not", "Track", "Ctrl", "English", "iframe", "Grafana"}
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
DATA_TOKEN = re.compile(r"[/.@_:=?&#\d]")  # paths, domains, emails, figures: data however they read
SHOWN_TEXT_JS = """() => {
  const code = 'code, pre, kbd, samp, script, style, template';
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const texts = [document.title];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.parentElement.closest(code)) texts.push(node.textContent);
  }
  for (const e of document.querySelectorAll('[aria-label],[title],[placeholder],[alt]'))
    for (const a of ['aria-label', 'title', 'placeholder', 'alt']) texts.push(e.getAttribute(a) || '');
  return texts.join('\\n');
}"""


def data_words(site, visits: list) -> set[str]:
    """Every word of the data the pages are seeded with: the site's domains, the visits' events
    (pages, referrers, campaigns, event names and properties, link texts), the names traffic
    sources, browsers and systems get, and what this module names (sites, the funnel, the link)."""
    from app.ingest.enrich import describe_user_agent
    from app.ingest.sources import KNOWN_HOSTS

    texts = [*site.domains, "Side project (no data yet)", "Team TV", *[name for name, _, _ in seed.demo_funnels(site)],
             *(source.name for source in KNOWN_HOSTS.values()), *(x for goal in seed.DEMO_GOALS for x in goal),
             *(name for visit in visits for name in describe_user_agent(visit.client.user_agent))]  # "Mobile Safari"

    def strings(value):
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for item in value.values():
                yield from strings(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                yield from strings(item)
    texts += [text for visit in visits for event in visit.events for text in strings(event)]
    return {w for text in texts for w in LATIN_WORD.findall(text)} | set(LATIN_WORD.findall(site.name)) | NAMES


def english_left(page, allowed: set[str]) -> list[str]:
    """Latin-letter words a page shows (its text, title and what it reads aloud) that are
    neither data nor names: untranslated words."""
    left = []
    for token in page.evaluate(SHOWN_TEXT_JS).split():
        if not DATA_TOKEN.search(token):
            left += [w for w in LATIN_WORD.findall(token) if w not in allowed and w not in left]
    return left


# -- the tests
LANGUAGES_SEEN = {"en": "en-US", "ko": "ko-KR"}  # each page in each language, as the browser asks for it


@pytest.mark.parametrize("spec, viewport, language", [
    pytest.param(p, v, lang, id=f"{p.name}-{v}" + ("" if lang == "en" else f"-{lang}"))
    for lang in LANGUAGES_SEEN for p in PAGES for v in VIEWPORTS])
def test_page(spec: Page, viewport: str, language: str, seeded: Seeded, browser, artifacts_dir):
    """In English and in Korean (the browser's Accept-Language: the admin chose no language)."""
    server = seeded.first_run() if spec.login == FIRST_RUN else seeded.server
    url = server.url + spec.path(seeded)
    context = browser.new_context(user_agent=DESKTOP_CHROME_UA, **VIEWPORTS[viewport], locale=LANGUAGES_SEEN[language],
                                  storage_state=seeded.admin_state if spec.login == ADMIN else None)
    context.set_default_timeout(15_000)
    suffix = "" if language == "en" else f"-{language}"
    try:
        prepare(context)
        page = context.new_page()
        response = page.goto(url)
        problems: list[str] = []
        if response is None or response.status != spec.status:
            problems.append(f"status: {response and response.status}, not {spec.status}")
        if urlsplit(page.url)[2:4] != urlsplit(url)[2:4]:
            problems.append(f"redirected: to {page.url}")
        settle(page)
        page.screenshot(path=str(artifacts_dir / f"page-{spec.name}-{viewport}{suffix}.png"), full_page=True)
        problems += audit(page)
        if page.evaluate("() => document.documentElement.lang") != language:
            problems.append(f"<html lang> is not {language}")
        if language != "en" and (left := english_left(page, seeded.data_words)):
            problems.append(f"English left: {', '.join(left)}")
    finally:
        context.close()
    if problems:
        pytest.fail(f"{len(problems)} problems on {url} ({viewport}):\n" + "\n".join(problems), pytrace=False)


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_a_server_error_page_quotes_its_reference(viewport: str, seeded: Seeded, browser, artifacts_dir,
                                                 monkeypatch):
    """A crash (here the health check's store call raising) gives the error page, which quotes
    the request's id so that a user's report leads to its lines in the server's log."""
    def broken():
        raise RuntimeError("a bug")
    monkeypatch.setattr(seeded.server.store, "check", broken)
    context = browser.new_context(user_agent=DESKTOP_CHROME_UA, **VIEWPORTS[viewport])
    try:
        prepare(context)
        page = context.new_page()
        response = page.goto(seeded.server.url + "/healthz")
        settle(page)
        page.screenshot(path=str(artifacts_dir / f"page-server-error-{viewport}.png"), full_page=True)
        reference = page.locator(".error-page code").inner_text()
        problems = audit(page)
    finally:
        context.close()
    assert response.status == 500 and reference == response.headers["x-request-id"]
    assert problems == []


# -- the overview, used: a metric charted, a tab chosen, a widget refreshed in place
@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_the_overview_charts_a_metric_switches_tabs_and_refreshes_in_place(viewport, seeded: Seeded, browser):
    context = browser.new_context(user_agent=DESKTOP_CHROME_UA, **VIEWPORTS[viewport], storage_state=seeded.admin_state)
    context.set_default_timeout(15_000)
    try:
        prepare(context)
        page = context.new_page()
        page.goto(f"{seeded.server.url}/sites/{seeded.site_id}?period=7d")
        settle(page)
        main = 'canvas[data-chart-id="main"]'
        page.wait_for_function(f"() => window.Chart && Chart.getChart(document.querySelector('{main}'))")

        # A metric's tile puts it on the chart, in place and without a request; the URL keeps it.
        page.click('a.metric-pick[data-metric="pageviews"]')
        assert page.evaluate(f"() => Chart.getChart(document.querySelector('{main}')).data.datasets[0].label") == "Page views"
        assert "metric=pageviews" in page.url
        expect(page.locator("#w-chart-title")).to_have_text("Page views per day")

        # A metric the chart's data lacks is fetched: its widget comes back charting it.
        def chart_of(metric):  # a refresh of the chart asking for this metric, and only it
            return lambda r: "/widgets/chart" in r.url and parse_qs(urlsplit(r.url).query).get("metric") == [metric]

        with page.expect_response(chart_of("bounce_rate")):
            page.click('a.metric-pick[data-metric="bounce_rate"]')
        expect(page.locator("#w-chart-title")).to_have_text("Bounce rate per day")
        # (the new canvas is drawn, or takes the old chart over, just after the swap: until then, no chart)
        page.wait_for_function(f"""() => {{ const chart = Chart.getChart(document.querySelector('{main}'));
            return chart !== undefined && chart.data.datasets[0].label === 'Bounce rate'; }}""")
        page.click('a.metric-pick[data-metric="pageviews"]')
        expect(page.locator("#w-chart-title")).to_have_text("Page views per day")

        # A refresh brings new data into the same chart: the canvas stays, an open tooltip stays open.
        page.evaluate(f"""() => {{ const canvas = document.querySelector('{main}'), chart = Chart.getChart(canvas);
            canvas.__mark = 'kept'; chart.__mark = 'kept';
            chart.tooltip.setActiveElements([{{datasetIndex: 0, index: 3}}], {{x: 10, y: 10}}); chart.update('none'); }}""")
        with page.expect_response(chart_of("pageviews")):
            page.evaluate("() => htmx.trigger('#w-chart', 'visibilitychange')")
        page.wait_for_function(f"() => document.querySelector('{main}') && document.querySelector('{main}').__mark === 'kept'")
        kept = page.evaluate(f"""() => {{ const chart = Chart.getChart(document.querySelector('{main}'));
            return {{same: chart.__mark === 'kept', label: chart.data.datasets[0].label,
                     tooltip: chart.tooltip.getActiveElements().length}}; }}""")
        assert kept == {"same": True, "label": "Page views", "tooltip": 1}

        # A tab fetches its widget into the panel; the arrow keys move between tabs.
        page.click("#tab-channels")
        expect(page.locator("#w-channels")).to_be_visible()
        expect(page.locator("#tab-channels")).to_have_attribute("aria-selected", "true")
        expect(page.locator("#tab-sources")).to_have_attribute("aria-selected", "false")
        page.focus("#tab-channels")
        page.keyboard.press("ArrowRight")
        expect(page.locator("#w-utm_campaign")).to_be_visible()
        assert "sources_tab=utm_campaign" in page.url

        # Every metric's definition opens by tap (or Enter) within the window, and closes again.
        for summary in page.locator(".metric details.define summary").all():
            summary.click()
            definition = summary.locator("xpath=following-sibling::p")
            expect(definition).to_be_visible()
            box, width = definition.bounding_box(), page.viewport_size["width"]
            assert box["x"] >= 0 and box["x"] + box["width"] <= width, (definition.inner_text()[:40], box)
            summary.click()

        # The world map and the donuts are drawn.
        page.wait_for_function("""() => ['map', 'devices'].every(id =>
            Chart.getChart(document.querySelector(`canvas[data-chart-id="${id}"]`)))""")
        settle(page)
        problems = audit(page)
    finally:
        context.close()
    assert problems == [], "\n".join(problems)


def test_a_page_filter_shows_the_visitors_and_visits_that_viewed_it(seeded: Seeded, browser):
    from app.analytics import stats
    from app.analytics.periods import parse_period

    store, site = seeded.server.store, seeded.server.store.get_site(seeded.site_id)
    period = parse_period("7d", site.timezone, SystemClock().now_ms())
    expected = stats.summary(store, site, period, stats.Filters({"page": "/pricing"}))["metrics"]
    assert expected["visitors"]["value"] > 0 and expected["visits"]["value"] > 0
    context = browser.new_context(user_agent=DESKTOP_CHROME_UA, storage_state=seeded.admin_state)
    try:
        page = context.new_page()
        page.goto(f"{seeded.server.url}/sites/{seeded.site_id}?period=7d&page=/pricing")
        metric = lambda name: page.locator(f'.metric[data-metric="{name}"] dd.value')  # noqa: E731
        expect(metric("visitors")).to_have_text(f"{expected['visitors']['value']:,}")
        expect(metric("visits")).to_have_text(f"{expected['visits']['value']:,}")
        expect(metric("bounce_rate")).to_contain_text("Not")  # in words, not a dash or a zero
        chart = page.evaluate("""() => JSON.parse(document.querySelector('canvas[data-chart-id="main"]').dataset.chartData)""")
        assert sum(chart["metrics"]["visitors"]["data"]) > 0  # the chart draws the page's visitors, not zeros
    finally:
        context.close()


# -- the overview's weight and speed (the budgets; figures printed for the closing note)
WEIGHT_BUDGET_BYTES = 150_000  # JS, CSS and the map's data, gzipped
LCP_BUDGET_MS = 1_000  # Largest Contentful Paint of the overview, on loopback
LCP_INIT_SCRIPT = """(() => { window.__lcp = 0;
  new PerformanceObserver(list => { for (const e of list.getEntries()) window.__lcp = e.startTime; })
    .observe({type: 'largest-contentful-paint', buffered: true}); })();"""


def test_the_overview_is_light_and_paints_fast(seeded: Seeded, browser, record_property):
    import gzip

    context = browser.new_context(user_agent=DESKTOP_CHROME_UA, **VIEWPORTS["desktop"], storage_state=seeded.admin_state)
    try:
        context.add_init_script(script=LCP_INIT_SCRIPT)
        page = context.new_page()
        page.goto(f"{seeded.server.url}/sites/{seeded.site_id}?period=30d")
        settle(page)
        lcp_ms = page.evaluate("() => window.__lcp")
        assets = page.evaluate("""() => [...document.querySelectorAll('script[src]')].map(s => s.src)
            .concat([...document.querySelectorAll('link[rel=stylesheet]')].map(l => l.href))
            .concat([...document.querySelectorAll('canvas[data-chart=map]')].map(c =>
                new URL(JSON.parse(c.dataset.chartData).topology, location.href).href))""")
        weights = {url.rsplit("/", 1)[-1]: len(gzip.compress(context.request.get(url).body(), 9)) for url in assets}
    finally:
        context.close()
    total = sum(weights.values())
    print(f"\noverview LCP {lcp_ms:.0f} ms; JS+CSS+map gzipped {total:,} B: {weights}")
    record_property("overview_lcp_ms", round(lcp_ms))
    record_property("overview_weight_gzip_bytes", total)
    assert any(name.startswith("world-atlas") for name in weights), "the map's data is part of the weight"
    assert total <= WEIGHT_BUDGET_BYTES, weights
    assert 0 < lcp_ms <= LCP_BUDGET_MS


# -- the dark theme (the system's setting) and reduced motion
@pytest.mark.parametrize("name", ["overview-30d", "realtime", "settings", "sites", "funnels", "retention"])
def test_the_dark_theme_follows_the_system_and_passes_the_audit(name, seeded: Seeded, browser, artifacts_dir):
    spec = next(p for p in PAGES if p.name == name)
    context = browser.new_context(user_agent=DESKTOP_CHROME_UA, **VIEWPORTS["phone"], color_scheme="dark",
                                  reduced_motion="reduce", storage_state=seeded.admin_state)
    context.set_default_timeout(15_000)
    try:
        prepare(context)
        page = context.new_page()
        page.goto(seeded.server.url + spec.path(seeded))
        settle(page)
        page.screenshot(path=str(artifacts_dir / f"page-{name}-phone-dark.png"), full_page=True)
        background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        still = page.evaluate("""() => [...document.querySelectorAll('.live-dot, .spinner')]
            .every(e => getComputedStyle(e).animationName === 'none')""")
        problems = audit(page)
    finally:
        context.close()
    assert background == "rgb(15, 23, 42)", background  # the dark theme's --bg
    assert still, "something moves although the system asks for reduced motion"
    assert problems == [], "\n".join(problems)
