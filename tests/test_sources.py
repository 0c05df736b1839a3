"""Traffic sources: the vendored referrer list, LiveInsight's supplement, UTM parameters and ad
click ids, and a site's own rules, each through the whole pipeline (pipeline.process)."""
import json

import pytest

from app.ingest import sources
from app.ingest.enrich import Client, Request
from app.ingest.pipeline import process
from app.ingest.sources import DATA, SourceRuleError, add_site_source, remove_site_source
from app.store.base import Site
from bench.referrer_coverage import landed, list_entries
from tests.conftest import CHROME_UA, T0

SITE = Site("example", "Example", "pk_example", ["example.com"])
# The rules' storage is the store contract's (both backends); here what they do, on SQLite.
ONE_BACKEND = pytest.mark.parametrize("backend", ["sqlite"])


def visit(site, url="https://example.com/", referrer="", first=None):
    event = {"event_id": "event-0001", "type": "page_view", "timestamp": T0, "user_id": "u1",
             "session_id": "s1", "url": url, "referrer": referrer}
    if first:
        event["first"] = [T0 - 86_400_000, *first]
    return process(event, Request(site, Client("198.51.100.23", CHROME_UA), T0))


def test_every_search_social_email_and_ad_host_of_the_vendored_list_lands_in_its_channel():
    """The whole list, a page view from each host: at least 99 % of each medium (all, today)."""
    shares = landed(list_entries(sources.vendored_list()))
    assert set(shares) == {"search", "social", "email", "paid"}
    for medium, (total, hit, misses) in shares.items():
        assert total > 50 and hit / total >= 0.99, (medium, misses)


def test_every_channel_a_visit_can_be_given_is_one_reports_know():
    """A cohort table of all visitors sums its channels' counters: a channel missing from
    CHANNELS would lose its visitors there."""
    given = {source.channel for source in sources.KNOWN_HOSTS.values()}
    given |= {source.channel for entries in sources.KNOWN_PATHS.values() for _, source in entries}
    assert given | {"paid", "email", "social", "campaign", "referral", "direct"} <= set(sources.CHANNELS)


SUPPLEMENT = [(host, entry["source"], sources.MEDIUM_CHANNELS[entry["medium"]])
              for host, entry in json.loads((DATA / "supplement.json").read_text()).items() if not host.startswith("_")]


@pytest.mark.parametrize("host, name, channel", SUPPLEMENT, ids=[host for host, _, _ in SUPPLEMENT])
def test_each_entry_of_the_supplement_names_its_source_and_channel(host, name, channel):
    event = visit(SITE, referrer=f"https://{host}/some/page?x=1")
    assert (event["source"], event["channel"]) == (name, channel)
    sub = visit(SITE, referrer=f"https://m.{host}/")  # its subdomains too (m., www., ...)
    assert (sub["source"], sub["channel"]) == (name, channel)


@pytest.mark.parametrize("referrer, source, channel", [
    # the home market: search engines, blogs and communities, webmail
    ("https://search.naver.com/search.naver?query=x", "Naver", "search"),
    ("https://m.search.naver.com/search.naver?query=x", "Naver", "search"),
    ("https://search.daum.net/search?q=x", "Daum", "search"),
    ("https://m.search.zum.com/search.zum?query=x", "Zum", "search"),
    ("https://search.nate.com/search/all.html?q=x", "Nate", "search"),
    ("https://blog.naver.com/someone/223", "Naver Blog", "social"),
    ("https://m.blog.naver.com/someone/223", "Naver Blog", "social"),
    ("https://cafe.naver.com/somecafe", "Naver Cafe", "social"),
    ("https://story.kakao.com/someone", "KakaoStory", "social"),
    ("https://band.us/band/123", "Band", "social"),
    ("https://mail.naver.com/", "Naver Mail", "email"),
    ("https://mail.google.com/mail/u/0/", "Gmail", "email"),
    ("https://outlook.live.com/mail/0/", "Outlook.com", "email"),
    ("android-app://com.google.android.gm/", "Gmail", "email"),
    # AI assistants
    ("https://chatgpt.com/", "ChatGPT", "ai"),
    ("https://www.perplexity.ai/search/x", "Perplexity", "ai"),
    ("https://gemini.google.com/app", "Gemini", "ai"),
    ("https://copilot.microsoft.com/", "Copilot", "ai"),
    # the list: the rest of the world, an ad server, a path entry, a news portal's section
    ("https://www.google.co.kr/", "Google", "search"),
    ("https://duckduckgo.com/", "DuckDuckGo", "search"),
    ("https://t.co/xyz", "Twitter", "social"),
    ("https://weibo.com/u/1", "Weibo", "social"),
    ("https://ok.ru/group", "Odnoklassniki", "social"),
    ("https://t.me/channel/5", "Telegram", "social"),
    ("https://discord.com/channels/1/2", "Discord", "social"),
    ("https://www.googleadservices.com/pagead/aclk?x", "Google", "paid"),
    ("https://www.orange.fr/webmail/inbox", "Orange Webmail", "email"),
    ("https://finance.yahoo.com/quote/x", "Yahoo!", "referral"),  # the list's "unknown": a referral, named
    ("https://en.wikipedia.org/wiki/Analytics", "Wikipedia", "referral"),
    ("https://blog.example.org/post", "blog.example.org", "referral"),  # not listed: the host
])
def test_a_referrer_names_its_source_and_channel(referrer, source, channel):
    event = visit(SITE, referrer=referrer)
    assert (event["source"], event["channel"]) == (source, channel)


@pytest.mark.parametrize("query, referrer, source, channel", [
    # a click on a search ad: the click id, whatever the referrer says (often nothing)
    ("gclid=Cj0KCQ", "", "Google", "paid"),
    ("gbraid=0AAAA", "https://www.google.com/", "Google", "paid"),
    ("msclkid=9f8e", "https://www.bing.com/", "Bing", "paid"),
    ("NaPm=ct%3Dabc", "https://search.naver.com/", "Naver", "paid"),
    ("yclid=123", "", "Yandex", "paid"),
    ("gclid=x&utm_source=google&utm_medium=cpc", "", "Google", "paid"),
    ("gclid=x&utm_source=spring-sale", "", "spring-sale", "paid"),
    # UTM mediums that name a channel; any other tagged link is a campaign
    ("utm_source=google&utm_medium=cpc&utm_campaign=spring", "", "Google", "paid"),
    ("utm_source=naver&utm_medium=ppc", "", "Naver", "paid"),
    ("utm_source=newsletter&utm_medium=email&utm_campaign=may", "", "newsletter", "email"),
    ("utm_source=stibee&utm_medium=Newsletter", "", "stibee", "email"),
    ("utm_source=facebook&utm_medium=social", "https://l.facebook.com/", "Facebook", "social"),
    ("utm_source=partner&utm_medium=banner&utm_campaign=may", "", "partner", "campaign"),
    ("utm_campaign=may", "https://news.ycombinator.com/", "Hacker News", "campaign"),
    ("utm_campaign=may", "", "Direct", "campaign"),
    # a link that only names where it was posted: that source's own channel
    ("utm_source=chatgpt.com", "", "ChatGPT", "ai"),
    ("utm_source=Facebook", "", "Facebook", "social"),
    ("utm_source=somewhere", "", "somewhere", "campaign"),
])
def test_landing_parameters_name_the_source_and_channel(query, referrer, source, channel):
    event = visit(SITE, url=f"https://example.com/landing?{query}", referrer=referrer)
    assert (event["source"], event["channel"]) == (source, channel)
    assert "click_id" not in event  # which ad was clicked is never kept


def test_reports_and_filters_count_the_new_channels_on_both_backends(store, site, ingest, make_event):
    from app.analytics import stats
    from app.analytics.periods import parse_period
    visits = [("https://chatgpt.com/", ""), ("", "?gclid=Cj0"), ("https://mail.naver.com/", ""),
              ("https://search.naver.com/search.naver?query=x", ""), ("https://m.search.daum.net/", ""),
              ("https://m.blog.naver.com/a/1", "")]
    ingest(*[make_event(referrer=referrer, url=f"https://example.com/{query}", user_id=f"v{i}", session_id=f"s{i}")
             for i, (referrer, query) in enumerate(visits)])
    today = parse_period("today", site.timezone, T0)
    by = lambda dimension, **filters: {row["value"]: row["visits"] for row in stats.breakdown(  # noqa: E731
        store, site, today, dimension, stats.Filters(filters))["rows"]}
    assert by("channel") == {"search": 2, "ai": 1, "paid": 1, "email": 1, "social": 1}
    assert by("source", channel="search") == {"Naver": 1, "Daum": 1}
    assert by("source", channel="ai") == {"ChatGPT": 1}
    assert stats.summary(store, site, today, stats.Filters({"source": "Naver Blog"}))["metrics"]["visits"]["value"] == 1


@ONE_BACKEND
def test_a_sites_own_sources_name_hosts_and_move_them_to_another_channel(store, site):
    assert visit(site, referrer="https://letter.example.net/issue/4")["channel"] == "referral"
    add_site_source(store, site, "https://www.Letter.example.net/", "Our newsletter", "email", T0)
    add_site_source(store, site, "pay.example.org", "", "direct", T0 + 1)  # the payment page sends people back
    add_site_source(store, site, "news.ycombinator.com", "HN", "referral", T0 + 2)  # over the list
    site = store.get_site("example")
    assert site.sources == [
        {"host": "letter.example.net", "name": "Our newsletter", "channel": "email"},
        {"host": "news.ycombinator.com", "name": "HN", "channel": "referral"},
        {"host": "pay.example.org", "name": "Direct", "channel": "direct"}]
    assert site.sources_changed_ms == T0 + 2
    for referrer, expected in [("https://letter.example.net/issue/4", ("Our newsletter", "email")),
                               ("https://m.letter.example.net/", ("Our newsletter", "email")),
                               ("https://pay.example.org/return", ("Direct", "direct")),
                               ("https://news.ycombinator.com/item?id=1", ("HN", "referral")),
                               ("https://t.co/x", ("Twitter", "social"))]:
        event = visit(site, referrer=referrer)
        assert (event["source"], event["channel"]) == expected, referrer
    # a utm_source naming the host, and a first visit from it, follow the same rule
    assert visit(site, url="https://example.com/?utm_source=letter.example.net")["channel"] == "email"
    first = visit(site, first=["https://example.com/", "https://letter.example.net/"])
    assert (first["first_source"], first["first_channel"]) == ("Our newsletter", "email")
    # a second rule for a host replaces the first; removing one restores the list's naming
    add_site_source(store, site, "letter.example.net", "Letter", "campaign", T0 + 3)
    remove_site_source(store, site, "news.ycombinator.com", T0 + 4)
    site = store.get_site("example")
    assert [(r["host"], r["channel"]) for r in site.sources] == [("letter.example.net", "campaign"),
                                                                ("pay.example.org", "direct")]
    assert visit(site, referrer="https://news.ycombinator.com/")["source"] == "Hacker News"
    assert site.sources_changed_ms == T0 + 4


@pytest.mark.parametrize("host, name, channel, error", [
    ("not a host", "", "email", "not a domain name"),
    ("letter.example.net", "", "newsletters", "the channel is one of"),
    ("letter.example.net", "x" * 61, "email", "at most 60 characters"),
])
@ONE_BACKEND
def test_a_rule_that_cannot_be_kept_says_why(store, site, host, name, channel, error):
    with pytest.raises(SourceRuleError, match=error):
        add_site_source(store, site, host, name, channel, T0)
    assert store.get_site("example").sources == []


@ONE_BACKEND
def test_a_site_has_at_most_200_rules_and_removing_an_unknown_one_says_so(store, site):
    for i in range(sources.MAX_SITE_SOURCES):
        site.sources.append({"host": f"h{i}.example", "name": "", "channel": "referral"})
    with pytest.raises(SourceRuleError, match="at most 200"):
        add_site_source(store, site, "one-more.example", "", "referral", T0)
    add_site_source(store, site, "h7.example", "Seven", "social", T0)  # replacing one is fine
    with pytest.raises(SourceRuleError, match="no source of your own"):
        remove_site_source(store, site, "nowhere.example", T0)


def test_hosts_are_found_by_suffix_with_a_bounded_number_of_lookups():
    """No scan of the list: a host costs one dictionary lookup per label, whatever its size."""
    probes = []

    class Counting(dict):
        def __contains__(self, key):
            probes.append(key)
            return super().__contains__(key)

    table = Counting(sources.KNOWN_HOSTS)
    original, sources.KNOWN_HOSTS = sources.KNOWN_HOSTS, table
    try:
        sources.known_host.cache_clear()
        assert sources.known_host("a.b.c.unknown-host.example") is None
        assert probes == ["a.b.c.unknown-host.example", "b.c.unknown-host.example", "c.unknown-host.example",
                          "unknown-host.example", "example"]
        probes.clear()
        assert sources.known_host("m.blog.naver.com").name == "Naver Blog"
        assert probes == ["m.blog.naver.com", "blog.naver.com"]  # the longest listed suffix wins
    finally:
        sources.KNOWN_HOSTS = original
        sources.known_host.cache_clear()


@ONE_BACKEND
def test_an_admin_names_a_source_in_settings_and_the_reports_show_it(client, store, site, settle, make_event):
    from tests.conftest import csrf_token
    token = csrf_token(client, "/sites/example/settings")
    response = client.post("/sites/example/sources", data={
        "csrf_token": token, "host": "letter.example.net", "name": "Our newsletter", "channel": "email"})
    assert response.status_code == 302 and response.headers["Location"].endswith("#sources")
    html = client.get("/sites/example/settings").get_data(as_text=True)
    assert "<td>letter.example.net</td><td>Our newsletter</td><td>Email</td>" in html
    bad = client.post("/sites/example/sources", data={"csrf_token": token, "host": "x.example", "channel": "tv"})
    assert bad.status_code == 400 and "the channel is one of" in bad.get_data(as_text=True)

    # Through the ingestion API, which reads the site (and its new rule) as trackers' requests do.
    sent = client.post("/api/events", json={"events": [
        make_event(referrer="https://letter.example.net/issue/5"),
        make_event(referrer="https://chatgpt.com/", user_id="visitor-2", session_id="session-2")]},
        headers={"X-API-Key": site.tracker_key, "User-Agent": CHROME_UA})
    assert sent.status_code == 202 and sent.json["data"]["accepted"] == 2
    settle()
    fragment = lambda name, period: client.get(f"/sites/example/widgets/{name}?period={period}",  # noqa: E731
                                               headers={"HX-Request": "true"}).get_data(as_text=True)
    sources_today = fragment("sources", "today")
    assert "Our newsletter" in sources_today and "ChatGPT" in sources_today
    channels_today = fragment("channels", "today")
    assert "Email" in channels_today and "AI assistants" in channels_today
    # A period with days from before the rules changed (today) says its older visits were named otherwise.
    assert "named by new rules since" not in channels_today
    assert "named by new rules since" in fragment("channels", "7d")

    assert client.post("/sites/example/sources/remove",
                       data={"csrf_token": token, "host": "letter.example.net"}).status_code == 302
    assert store.get_site("example").sources == []
    assert client.post("/sites/example/sources/remove", data={"csrf_token": token, "host": "x"}).status_code == 404
    assert sorted(e.action for e in store.list_audit("example")) == ["source.add", "source.remove"]
