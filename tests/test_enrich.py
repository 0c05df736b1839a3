"""Enrichment: IP masking, user agents, bots, URLs, referrers and UTM parameters, each
through the whole pipeline (pipeline.process)."""
import pytest

from app.ingest.sources import CHANNELS
from app.ingest.enrich import Client, Dropped, DropReason, Request, masked_ip
from app.ingest.pipeline import STEPS, process
from app.store.base import Site
from tests.conftest import CHROME_UA, T0

IPHONE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")
IPAD_UA = ("Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
           "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")
ANDROID_TABLET_UA = ("Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 "
                     "(KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36")


SITE = Site("example", "Example", "pk_example", ["example.com"])


def run(url="https://example.com/", referrer="", ua=CHROME_UA, ip="198.51.100.23", site=SITE, extra=None, **client):
    event = {"event_id": "event-0001", "type": "page_view", "timestamp": T0, "user_id": "u1",
             "session_id": "s1", "url": url, "referrer": referrer, **(extra or {})}
    return process(event, Request(site, Client(ip, ua, **client), T0))


def test_the_pipeline_is_one_list_of_named_steps():
    assert [step.__name__ for step in STEPS] == [
        "honour_privacy_signals", "validate", "drop_bots", "lookup_country", "mask_ip", "parse_user_agent",
        "split_url", "classify_referrer", "first_visit", "page_on_site", "drop_referrer_spam", "stored_record"]


@pytest.mark.parametrize("honour, client, reason", [
    ({"honour_gpc": True}, {"gpc": True}, DropReason.GPC),
    ({"honour_dnt": True}, {"dnt": True}, DropReason.DNT),
    ({"honour_gpc": True}, {"dnt": True}, None),  # a signal the site does not honour
])
def test_privacy_signals_the_site_honours_drop_with_their_reason(honour, client, reason):
    site = Site("example", "Example", "pk_example", ["example.com"], **honour)
    if reason is None:
        assert run(site=site, **client)["site_id"] == "example"
        return
    with pytest.raises(Dropped) as drop:
        run(site=site, **client)
    assert drop.value.reason is reason


@pytest.mark.parametrize("raw, masked", [
    ("198.51.100.23", "198.51.100.0"),
    ("2001:db8:abcd:12:1:2:3:4", "2001:db8:abcd::"),
    ("::ffff:198.51.100.23", "198.51.100.0"),
    ("not an ip", ""),
    ("", ""),
])
def test_ip_is_masked(raw, masked):
    assert masked_ip(raw) == masked
    assert run(ip=raw)["ip"] == masked


@pytest.mark.parametrize("ua, browser, os_name, device", [
    (CHROME_UA, "Chrome", "Windows", "desktop"),
    (IPHONE_UA, "Mobile Safari", "iOS", "mobile"),
    (IPAD_UA, "Mobile Safari", "iOS", "tablet"),
    (ANDROID_TABLET_UA, "Chrome", "Android", "tablet"),
])
def test_user_agent_is_parsed(ua, browser, os_name, device):
    event = run(ua=ua)
    assert (event["browser"], event["os"], event["device"]) == (browser, os_name, device)


@pytest.mark.parametrize("ua", [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "curl/8.5.0",
    "python-requests/2.32.3",
    "",
])
def test_bots_are_dropped_with_a_reason(ua):
    with pytest.raises(Dropped) as drop:
        run(ua=ua)
    assert drop.value.reason is DropReason.BOT


@pytest.mark.parametrize("referrer, source, channel", [
    ("", "Direct", "direct"),
    ("https://www.google.com/search?q=x", "Google", "search"),
    ("https://www.google.co.uk/", "Google", "search"),
    ("https://duckduckgo.com/", "DuckDuckGo", "search"),
    ("https://t.co/xyz", "Twitter", "social"),
    ("https://old.reddit.com/r/x", "Reddit", "social"),
    ("https://news.ycombinator.com/item?id=1", "Hacker News", "social"),
    ("https://blog.example.org/post", "blog.example.org", "referral"),
    ("https://example.com/other-page", "Direct", "direct"),  # internal navigation
    ("https://www.example.com/", "Direct", "direct"),
    ("not a url", "Direct", "direct"),
])
def test_referrer_is_classified(referrer, source, channel):
    event = run(referrer=referrer)
    assert (event["source"], event["channel"]) == (source, channel)


def test_utm_parameters_are_kept_and_name_the_source():
    event = run(url="https://example.com/landing?utm_source=newsletter&utm_medium=email"
                    "&utm_campaign=autumn&utm_term=t&utm_content=c&x=1",
                referrer="https://www.google.com/")
    assert event["path"] == "/landing"
    assert (event["utm_source"], event["utm_medium"], event["utm_campaign"],
            event["utm_term"], event["utm_content"]) == ("newsletter", "email", "autumn", "t", "c")
    assert (event["source"], event["channel"]) == ("newsletter", "email")


def test_url_is_split_into_host_and_path():
    event = run(url="https://shop.example.com/a/b?q=1#frag")
    assert (event["hostname"], event["path"]) == ("shop.example.com", "/a/b")
    assert run(url="https://example.com")["path"] == "/"


@pytest.mark.parametrize("landing, referrer, source, channel", [
    ("https://example.com/", "https://www.google.com/", "Google", "search"),
    ("https://example.com/?utm_source=news&utm_medium=email", "", "news", "email"),
    ("https://example.com/?utm_source=news&utm_campaign=may", "", "news", "campaign"),
    ("https://example.com/a", "https://example.com/b", "Direct", "direct"),  # from the site itself
    ("not a url", "", "Direct", "direct"),
])
def test_the_first_visit_is_classified_as_any_visit(landing, referrer, source, channel):
    event = run(extra={"first": [T0 - 86_400_000, landing, referrer], "prev": T0 - 1000})
    assert (event["first_ms"], event["first_source"], event["first_channel"]) == (T0 - 86_400_000, source, channel)
    assert channel in CHANNELS  # a cohort table of all visitors sums these
    assert event["prev_ms"] == T0 - 1000
    assert "first" not in event and "prev" not in event  # the landing page itself is not kept


def test_without_a_first_visit_the_cohort_is_unknown():
    event = run()
    assert (event["first_ms"], event["first_source"], event["first_channel"], event["prev_ms"]) == (None,) * 4


def test_a_first_visit_after_the_event_counts_at_the_event():
    assert run(extra={"first": [T0 + 60_000, "https://example.com/", ""]})["first_ms"] == T0


@pytest.mark.parametrize("first, prev", [([1, 2], "x"), ("x", -1), ([-1, "https://example.com/", ""], 1.5),
                                         ([1, "u", "r", 4], None)])
def test_a_malformed_first_visit_or_previous_event_counts_as_unknown(first, prev):
    """What the tracker keeps in the visitor's storage may be tampered with: never refuse the event."""
    event = run(extra={"first": first, "prev": prev})
    assert (event["first_ms"], event["first_source"], event["prev_ms"]) == (None, None, None)


def test_a_long_landing_page_is_cut_not_refused():
    event = run(extra={"first": [T0, "https://example.com/?utm_source=news&x=" + "a" * 5000, "b" * 5000]})
    assert (event["first_source"], event["first_channel"]) == ("news", "campaign")
