"""The Store contract: what every backend must do. Runs once per backend in BACKENDS."""
from __future__ import annotations

import pytest

from app.store.base import (
    DAY_MS, EVENT_FIELDS, HOUR_MS, Changes, CounterKey, Session, Site, UniqueKey, Visitor,
)
from tests.conftest import T0


def record(event_id="e1", site_id="s1", ts=T0, **fields):
    event = {name: "" for name in EVENT_FIELDS}
    event.update(site_id=site_id, event_id=event_id, type="page_view", ts=ts, received_ms=ts,
                 user_id="u1", session_id="sess1", url="https://example.com/", path="/",
                 value=None, props={})
    event.update(fields)
    return event


def session(session_id="sess1", site_id="s1", last_seen=T0, **fields):
    values = dict(site_id=site_id, session_id=session_id, user_id="u1", seq=0, started_ms=T0,
                  last_seen_ms=last_seen)
    values.update(fields)
    return Session(**values)


def test_sites_round_trip(store):
    site = Site("s1", "One", "pk_one", ["example.com", "example.org"], "Europe/Paris", T0)
    store.create_site(site)
    store.create_site(Site("s2", "Two", "pk_two", ["two.example"], "UTC", T0 + 1))
    assert store.get_site("s1") == site
    assert store.get_site_by_key("pk_one") == site
    assert store.get_site("missing") is None
    assert store.get_site_by_key("pk_missing") is None
    assert [s.site_id for s in store.list_sites()] == ["s1", "s2"]


def test_append_events_ignores_duplicates_and_returns_new_ones(store):
    first = store.append_events([record("e1"), record("e2")])
    assert [e["event_id"] for e in first] == ["e1", "e2"]
    again = store.append_events([record("e2"), record("e3"), record("e3")])
    assert [e["event_id"] for e in again] == ["e3"]
    # The same event id on another site is another event.
    assert len(store.append_events([record("e1", site_id="s2")])) == 1


def test_recent_events_newest_first_with_all_fields(store):
    store.append_events([record(f"e{i}", ts=T0 + i, received_ms=T0 + i, props={"k": i})
                         for i in range(5)])
    store.append_events([record("other", site_id="s2", ts=T0 + 9, received_ms=T0 + 9)])
    recent = store.recent_events("s1", limit=3)
    assert [e["event_id"] for e in recent] == ["e4", "e3", "e2"]
    assert recent[0]["props"] == {"k": 4}
    assert set(recent[0]) >= set(EVENT_FIELDS)


def test_sessions_upsert_and_get(store):
    store.apply(Changes(sessions=[session("a"), session("b", pageviews=2)]))
    store.apply(Changes(sessions=[session("a", pageviews=5, exit_path="/x")]))
    found = store.get_sessions("s1", ["a", "b", "missing"])
    assert set(found) == {"a", "b"}
    assert found["a"].pageviews == 5 and found["a"].exit_path == "/x"
    assert found["b"] == session("b", pageviews=2)
    assert store.get_sessions("s2", ["a"]) == {}


def test_visitors_upsert_and_get(store):
    store.apply(Changes(visitors=[Visitor("s1", "u1", 10, T0), Visitor("s1", "u2", 10, T0)]))
    assert store.get_visitors("s1", ["u2"]) == {"u2": Visitor("s1", "u2", 10, T0)}  # live_page None
    live = Visitor("s1", "u1", 11, T0 + 5, live_page="/x", live_source="Google", live_duration_ms=5_000)
    store.apply(Changes(visitors=[live]))
    assert store.get_visitors("s1", ["u1", "u3"]) == {"u1": live}


def test_counters_add_up_and_read_by_hour_range(store):
    hour = T0 // HOUR_MS
    key = lambda h, value="/": CounterKey("s1", h, "pageviews", "page", value)  # noqa: E731
    store.apply(Changes(counters={key(hour): 2, key(hour, "/b"): 1, key(hour + 1): 1}))
    store.apply(Changes(counters={key(hour): 3, key(hour - 1): 7}))
    store.apply(Changes(counters={CounterKey("s1", hour, "pageviews", "", ""): 4,
                                  CounterKey("s2", hour, "pageviews", "page", "/"): 9}))
    rows = store.read_counters("s1", "pageviews", "page", hour, hour + 2)
    assert sorted((r.hour, r.value, r.n) for r in rows) == [
        (hour, "/", 5), (hour, "/b", 1), (hour + 1, "/", 1)]
    totals = store.read_counters("s1", "pageviews", "", hour - 5, hour + 5)
    assert [(r.hour, r.n) for r in totals] == [(hour, 4)]


def test_reads_in_one_moment_are_what_they_are_outside_it(store):
    """One moment's reads may share what an earlier one fetched (DynamoDB: a partition's range
    once): each metric, and a narrower range, still reads what it would alone."""
    hour = T0 // HOUR_MS
    store.apply(Changes(counters={
        **{CounterKey("s1", h, "pageviews", "page", "/"): h - hour + 1 for h in range(hour, hour + 4)},
        CounterKey("s1", hour + 1, "visitors", "page", "/"): 7,
        CounterKey("s1", hour + 2, "pageviews", "page", "/b"): 5}))

    def rows(start: int, end: int) -> list[tuple]:
        return sorted((r.hour, r.value, r.n) for r in store.read_counters("s1", "pageviews", "page", start, end))

    def reads() -> list:
        return [rows(hour, hour + 4), store.sum_counters("s1", "visitors", "page", hour, hour + 4, "hour"),
                rows(hour + 1, hour + 3),
                store.sum_counters("s1", "pageviews", "page", hour + 2, hour + 3, "hour", prefix="/b"),
                rows(hour - 2, hour + 1)]  # wider than any read before: read anew
    alone = reads()
    assert alone[1] == {"/": 7} and alone[3] == {"/b": 5} and alone[4] == [(hour, "/", 1)]
    assert alone[2] == [(hour + 1, "/", 2), (hour + 2, "/", 3), (hour + 2, "/b", 5)]
    with store.one_moment():
        assert reads() == alone


def test_counters_take_negative_and_fractional_deltas(store):
    key = CounterKey("s1", T0 // HOUR_MS, "bounces", "", "")
    store.apply(Changes(counters={key: 1}))
    store.apply(Changes(counters={key: -1}))
    value_key = CounterKey("s1", T0 // HOUR_MS, "conversion_value", "name", "buy")
    store.apply(Changes(counters={value_key: 9.5}))
    assert [r.n for r in store.read_counters("s1", "bounces", "", 0, 10**9)] in ([0], [])
    assert [r.n for r in store.read_counters("s1", "conversion_value", "name", 0, 10**9)] == [9.5]


def test_purge_drops_raw_data_after_a_day_and_counters_after_retention(store, settle):
    now = T0 + 2 * DAY_MS
    store.append_events([record("old", ts=T0, received_ms=T0),
                         record("new", ts=now - HOUR_MS, received_ms=now - HOUR_MS)])
    settle()  # raw events go once folded into the figures
    store.apply(Changes(
        sessions=[session("old", last_seen=T0), session("new", last_seen=now - HOUR_MS)],
        visitors=[Visitor("s1", "old", 0, T0), Visitor("s1", "new", 0, now - HOUR_MS)],
        counters={CounterKey("s1", (now - 401 * DAY_MS) // HOUR_MS, "pageviews", "", ""): 1,
                  CounterKey("s1", T0 // HOUR_MS, "pageviews", "", ""): 1}))
    store.purge(now)
    assert [e["event_id"] for e in store.recent_events("s1", 10)] == ["new"]
    assert set(store.get_sessions("s1", ["old", "new"])) == {"new"}
    assert set(store.get_visitors("s1", ["old", "new"])) == {"new"}
    hours = {r.hour for r in store.read_counters("s1", "pageviews", "", 0, 10**9)}
    assert T0 // HOUR_MS in hours and (now - 401 * DAY_MS) // HOUR_MS not in hours


def test_what_was_folded_since_a_position_names_its_sites(store, settle):
    from app.store.base import StoreError
    if not store.reads_own_log:  # DynamoDB: the stream function folds; live push is the single box's
        with pytest.raises(StoreError):
            store.folded_since(None)
        return
    store.append_events([record("e1", site_id="s1"), record("e2", site_id="s2")])
    settle()
    position, sites = store.folded_since(None)  # from now on
    assert sites == set() and store.folded_since(position) == (position, set())
    store.append_events([record("e3", site_id="s2"), record("e4", site_id="s2")])
    assert store.folded_since(position) == (position, set())  # appended, not folded yet
    settle()
    later, sites = store.folded_since(position)
    assert later > position and sites == {"s2"}


def test_transaction_context_wraps_writes(store):
    with store.transaction():
        new = store.append_events([record("t1")])
        store.apply(Changes(sessions=[session("t")]))
    assert len(new) == 1
    assert "t" in store.get_sessions("s1", ["t"])


def test_counters_of_each_grain_are_kept_apart(store):
    bucket = 20_000
    store.apply(Changes(counters={CounterKey("s1", bucket, "pageviews", "", "", grain): n
                                  for grain, n in (("hour", 1), ("5min", 2), ("day", 3))}))
    for grain, n in (("hour", 1), ("5min", 2), ("day", 3)):
        assert [(r.hour, r.n) for r in store.read_counters("s1", "pageviews", "", 0, 10**9, grain=grain)] \
            == [(bucket, n)]


def test_unique_visitor_sketches_merge_and_read_by_day_range(store):
    from app.store.hll import count_visitors
    day = 20_400
    store.apply(Changes(uniques={UniqueKey("s1", day, "page", "/a"): {"u1", "u2"},
                                 UniqueKey("s1", day, "page", "/b"): {"u1"},
                                 UniqueKey("s1", day + 1, "page", "/a"): {"u2", "u3"},
                                 UniqueKey("s1", day, "", ""): {"u1", "u2"},
                                 UniqueKey("s2", day, "page", "/a"): {"x"}}))
    store.apply(Changes(uniques={UniqueKey("s1", day, "page", "/a"): {"u2", "u4"}}))  # merges
    rows = store.read_sketches("s1", "page", day, day + 2)
    by_value = {}
    for row in rows:
        by_value.setdefault(row.value, []).append(row.sketch)
    assert {v: count_visitors(s) for v, s in by_value.items()} == {"/a": 4, "/b": 1}
    only_a = store.read_sketches("s1", "page", day, day + 1, values=["/a"])
    assert [(r.day, r.value, count_visitors([r.sketch])) for r in only_a] == [(day, "/a", 3)]
    assert store.read_sketches("s1", "page", day + 5, day + 9) == []
    assert [count_visitors([r.sketch]) for r in store.read_sketches("s1", "", day, day + 1)] == [2]


def test_counter_totals_per_value_over_a_bucket_range(store):
    store.apply(Changes(counters={
        CounterKey("s1", 100, "pageviews", "page", "/a", "day"): 2,
        CounterKey("s1", 101, "pageviews", "page", "/a", "day"): 3,
        CounterKey("s1", 101, "pageviews", "page", "/b", "day"): 1,
        CounterKey("s1", 102, "pageviews", "page", "/b", "day"): 7,  # past the range
        CounterKey("s1", 101, "pageviews", "page", "/a", "hour"): 50,  # another grain
        CounterKey("s1", 101, "sessions", "page", "/a", "day"): 50,  # another metric
        CounterKey("s2", 101, "pageviews", "page", "/a", "day"): 50}))  # another site
    assert store.sum_counters("s1", "pageviews", "page", 100, 102, "day") == {"/a": 5, "/b": 1}
    assert store.sum_counters("s1", "pageviews", "page", 103, 200, "day") == {}


def test_counter_totals_of_the_values_with_a_prefix(store):
    store.apply(Changes(counters={
        CounterKey("s1", 100, "sessions", "goal_cube", '["c:","x"]', "day"): 2,
        CounterKey("s1", 101, "sessions", "goal_cube", '["c:","y"]', "day"): 3,
        CounterKey("s1", 101, "sessions", "goal_cube", '["c:Buy","x"]', "day"): 5,  # another goal
        CounterKey("s1", 101, "sessions", "goal_cube", '["e:😀","x"]', "day"): 7}))
    assert store.sum_counters("s1", "sessions", "goal_cube", 100, 102, "day", '["c:",') == {
        '["c:","x"]': 2, '["c:","y"]': 3}
    assert store.sum_counters("s1", "sessions", "goal_cube", 100, 102, "day", '["e:😀",') == {
        '["e:😀","x"]': 7}
    assert len(store.sum_counters("s1", "sessions", "goal_cube", 100, 102, "day")) == 4


def test_rollups_are_written_whole_and_kept_apart_from_days(store):
    from app.store.hll import add_visitors, count_visitors
    month, day = 24_322, 20_400
    store.apply(Changes(counters={CounterKey("s1", month, "pageviews", "page", "/a", "day"): 1},
                        uniques={UniqueKey("s1", month, "page", "/a"): {"u1"}}))
    rollup = ({CounterKey("s1", month, "pageviews", "page", "/a", "month"): 40,
               CounterKey("s1", month, "pageviews", "page", "/b", "month"): 2},
              {UniqueKey("s1", month, "page", "/a", "month"): add_visitors(None, ["u1", "u2", "u3"]),
               UniqueKey("s1", month, "", "", "month"): add_visitors(None, ["u1"])})
    store.put_rollups(*rollup)
    store.put_rollups(*rollup)  # written again: replaced, not added
    assert store.sum_counters("s1", "pageviews", "page", month, month + 1, "month") == {"/a": 40, "/b": 2}
    assert store.sum_counters("s1", "pageviews", "page", month, month + 1, "day") == {"/a": 1}
    months = store.read_sketches("s1", "page", month, month + 1, grain="month")
    assert [(r.day, r.value, count_visitors([r.sketch])) for r in months] == [(month, "/a", 3)]
    days = store.read_sketches("s1", "page", month, month + 1)
    assert [(r.value, count_visitors([r.sketch])) for r in days] == [("/a", 1)]
    assert store.read_sketches("s1", "page", day, day + 1, grain="month") == []


def test_counters_only_put_rollups_writes_read_back_as_rollups(store):
    """Any grain: what put_rollups wrote reads the same with rollups=True (which lets DynamoDB
    read one shard)."""
    written = {CounterKey("s1", day, "digest", "report", value, "day"): n
               for day, value, n in ((20_400, '["/a"]', 3), (20_400, '["/b"]', 1), (20_401, '["/a"]', 2))}
    store.put_rollups(written, {})
    rows = store.read_counters("s1", "digest", "report", 20_400, 20_402, grain="day", rollups=True)
    assert sorted((r.hour, r.value, r.n) for r in rows) == [(20_400, '["/a"]', 3), (20_400, '["/b"]', 1),
                                                            (20_401, '["/a"]', 2)]
    assert store.sum_counters("s1", "digest", "report", 20_400, 20_402, prefix='["/a', rollups=True) == {'["/a"]': 5}


def test_sites_remember_their_last_rolled_up_month(store):
    store.create_site(Site("s1", "One", "pk_one", ["one.example"]))
    assert store.get_site("s1").rolled_up_month == -1
    store.set_rolled_up_month("s1", 24_322)
    assert store.get_site("s1").rolled_up_month == 24_322
    assert [s.rolled_up_month for s in store.list_sites()] == [24_322]
    assert store.get_site_by_key("pk_one").rolled_up_month == 24_322


def test_purge_drops_a_month_rollup_when_its_last_day_is_past_retention(store):
    from app.store.base import month_of_day
    from app.store.hll import add_visitors
    now = T0 + 2 * DAY_MS
    today = now // DAY_MS
    old, kept = month_of_day(today - 440), month_of_day(today - 380)
    store.put_rollups({CounterKey("s1", m, "pageviews", "", "", "month"): 1 for m in (old, kept)},
                      {UniqueKey("s1", m, "", "", "month"): add_visitors(None, ["u1"]) for m in (old, kept)})
    store.purge(now)
    assert [r.hour for r in store.read_counters("s1", "pageviews", "", 0, 10**9, grain="month")] == [kept]
    assert [r.day for r in store.read_sketches("s1", "", 0, 10**9, grain="month")] == [kept]


def test_purge_keeps_five_minute_counters_only_a_day(store):
    now = T0 + 2 * DAY_MS
    store.apply(Changes(counters={
        CounterKey("s1", (now - 2 * HOUR_MS) // 300_000, "pageviews", "", "", "5min"): 1,
        CounterKey("s1", (now - 25 * HOUR_MS) // 300_000, "pageviews", "", "", "5min"): 1,
        CounterKey("s1", (now - 30 * DAY_MS) // DAY_MS, "pageviews", "", "", "day"): 1,
        CounterKey("s1", (now - 402 * DAY_MS) // DAY_MS, "pageviews", "", "", "day"): 1}))
    store.purge(now)
    assert [r.hour for r in store.read_counters("s1", "pageviews", "", 0, 10**9, grain="5min")] == [
        (now - 2 * HOUR_MS) // 300_000]
    assert [r.hour for r in store.read_counters("s1", "pageviews", "", 0, 10**9, grain="day")] == [
        (now - 30 * DAY_MS) // DAY_MS]


# -- accounts
from app.store.base import Conflict, Invitation, Login, Membership, PublicLink, User  # noqa: E402


def user(user_id="u1", email="ada@example.com", **fields):
    return User(**{"user_id": user_id, "email": email, "password_hash": "hash", "created_ms": T0, **fields})


def test_users_round_trip_and_emails_stay_unique(store):
    store.create_user(user("u1", "ada@example.com", is_admin=True))
    store.create_user(user("u2", "bob@example.com"))
    assert store.get_user("u1") == user("u1", "ada@example.com", is_admin=True)
    assert store.get_user_by_email("bob@example.com").user_id == "u2"
    assert store.get_user("nobody") is None and store.get_user_by_email("nobody@example.com") is None
    with pytest.raises(Conflict):
        store.create_user(user("u3", "ada@example.com"))
    assert store.get_user("u3") is None
    assert [u.email for u in store.list_users()] == ["ada@example.com", "bob@example.com"]


def test_update_and_delete_user(store):
    store.create_user(user("u1"))
    store.put_membership(Membership("s1", "u1", "owner", T0))
    store.update_user(user("u1", password_hash="new", is_admin=True))
    assert store.get_user("u1").password_hash == "new" and store.get_user("u1").is_admin
    store.delete_user("u1")
    assert store.get_user("u1") is None and store.get_user_by_email("ada@example.com") is None
    assert store.site_members("s1") == [] and store.user_memberships("u1") == []
    store.create_user(user("u4", "ada@example.com"))  # the email is free again


def test_a_users_logins_are_saved_with_it(store):
    store.create_user(user("u1", logins=[Login("h1", T0)]))
    saved = store.get_user("u1")
    assert saved.logins == [Login("h1", T0)] and isinstance(saved.logins[0], Login)
    saved.logins.append(Login("h2", T0 + 5))
    store.update_user(saved)
    assert store.get_user_by_email("ada@example.com").logins == [Login("h1", T0), Login("h2", T0 + 5)]
    assert [u.logins for u in store.list_users()] == [[Login("h1", T0), Login("h2", T0 + 5)]]


def test_a_users_language_is_saved_with_it(store):
    store.create_user(user("u1"))
    assert store.get_user("u1").language == ""  # none chosen: the browser's
    saved = store.get_user("u1")
    saved.language = "ko"
    store.update_user(saved)
    assert store.get_user("u1").language == "ko" and store.list_users()[0].language == "ko"
    store.create_user(user("u2", "grace@example.com", language="en"))
    assert store.get_user_by_email("grace@example.com").language == "en"


def test_invitations_are_read_by_site_and_by_email(store):
    store.put_invitation(Invitation("s1", "ada@example.com", "viewer", "bob@example.com", T0))
    store.put_invitation(Invitation("s1", "cy@example.com", "admin", "bob@example.com", T0 + 1))
    store.put_invitation(Invitation("s2", "ada@example.com", "owner", "eve@example.com", T0 + 2))
    assert store.get_invitation("s1", "ada@example.com") == Invitation(
        "s1", "ada@example.com", "viewer", "bob@example.com", T0)
    assert store.get_invitation("s2", "cy@example.com") is None
    assert [(i.email, i.role) for i in store.site_invitations("s1")] == [
        ("ada@example.com", "viewer"), ("cy@example.com", "admin")]
    assert [(i.site_id, i.role) for i in store.email_invitations("ada@example.com")] == [
        ("s1", "viewer"), ("s2", "owner")]
    store.put_invitation(Invitation("s1", "ada@example.com", "admin", "bob@example.com", T0))  # replaces
    assert store.get_invitation("s1", "ada@example.com").role == "admin"
    store.delete_invitation("s1", "ada@example.com")
    assert [i.site_id for i in store.email_invitations("ada@example.com")] == ["s2"]
    assert store.email_invitations("nobody@example.com") == []


def test_memberships_read_from_both_ends(store):
    store.put_membership(Membership("s1", "u1", "owner", T0))
    store.put_membership(Membership("s1", "u2", "viewer", T0 + 1))
    store.put_membership(Membership("s2", "u1", "viewer", T0 + 2))
    assert store.get_membership("s1", "u2") == Membership("s1", "u2", "viewer", T0 + 1)
    assert store.get_membership("s2", "u2") is None
    assert [(m.user_id, m.role) for m in store.site_members("s1")] == [("u1", "owner"), ("u2", "viewer")]
    assert [(m.site_id, m.role) for m in store.user_memberships("u1")] == [("s1", "owner"), ("s2", "viewer")]
    store.put_membership(Membership("s1", "u2", "admin", T0 + 1))  # a new role replaces the old
    assert store.get_membership("s1", "u2").role == "admin"
    store.delete_membership("s1", "u2")
    assert [m.user_id for m in store.site_members("s1")] == ["u1"]
    assert store.user_memberships("u2") == []


def test_public_links_are_found_by_hash_and_revoked(store):
    store.create_public_link(PublicLink("h1", "s1", "Team TV", T0, "u1"))
    store.create_public_link(PublicLink("h2", "s1", "Blog", T0 + 1, "u1"))
    assert store.get_public_link("h1") == PublicLink("h1", "s1", "Team TV", T0, "u1", None)
    assert store.get_public_link("h3") is None
    store.revoke_public_link("h1", T0 + 5)
    store.revoke_public_link("h1", T0 + 9)  # the first revocation stands
    assert store.get_public_link("h1").revoked_ms == T0 + 5
    assert [(link.token_hash, link.revoked_ms) for link in store.list_public_links("s1")] == [
        ("h1", T0 + 5), ("h2", None)]
    assert store.list_public_links("s2") == []


def test_a_sites_editable_fields_are_saved_and_the_rest_kept(store):
    store.create_site(Site("s1", "One", "pk_one", ["one.example"], "UTC", T0, rolled_up_month=7))
    site = store.get_site("s1")
    assert (site.honour_dnt, site.honour_gpc, site.blocked_referrers) == (False, False, [])
    site.name, site.domains, site.timezone = "Uno", ["one.example", "uno.example"], "Europe/Rome"
    site.honour_dnt, site.honour_gpc, site.blocked_referrers = True, True, ["spam.example"]
    site.tracker_key, site.rolled_up_month = "pk_changed", 99  # not editable: kept as they were
    store.update_site(site)
    saved = store.get_site("s1")
    assert (saved.name, saved.domains, saved.timezone) == ("Uno", ["one.example", "uno.example"], "Europe/Rome")
    assert (saved.honour_dnt, saved.honour_gpc, saved.blocked_referrers) == (True, True, ["spam.example"])
    assert (saved.tracker_key, saved.rolled_up_month, saved.created_ms) == ("pk_one", 7, T0)
    assert store.get_site_by_key("pk_one").name == "Uno"
    # What the site counts: goals (maps in a list), currency, outbound links, download extensions.
    goals = [{"id": "ab12cd34", "name": "Plan", "kind": "event", "match": "signup", "prop": "plan",
              "value": "pro", "created_ms": T0}]
    site.goals, site.currency, site.outbound_links, site.download_extensions = goals, "KRW", False, ["pdf"]
    store.update_site(site)
    saved = store.get_site("s1")
    assert (saved.goals, saved.currency, saved.outbound_links, saved.download_extensions) == (goals, "KRW", False, ["pdf"])
    assert type(saved.goals[0]["created_ms"]) is int
    # The site's own traffic sources, and when they changed.
    site.sources = [{"host": "letter.example", "name": "Our letter", "channel": "email"}]
    site.sources_changed_ms = T0 + 3
    store.update_site(site)
    saved = store.get_site("s1")
    assert (saved.sources, saved.sources_changed_ms) == (site.sources, T0 + 3)
    # What its alerts watch and where they go: maps in a map.
    assert saved.alerts == {}
    site.alerts = {"traffic": {"enabled": True, "sensitivity": "high", "min_volume": 20},
                   "webhooks": [{"id": "w1", "url": "https://hooks.example/x", "format": "slack", "secret": "s"}],
                   "recipients": ["u1"], "muted_until_ms": T0}
    store.update_site(site)
    assert store.get_site("s1").alerts == site.alerts


def test_api_keys_are_found_by_hash_listed_and_updated(store):
    from app.store.base import ApiKey
    store.create_api_key(ApiKey("hash-1", "s1", "CI", "sk_abc", T0, "ada@example.com"))
    store.create_api_key(ApiKey("hash-2", "s1", "Grafana", "sk_def", T0 + 1, "cli"))
    store.create_api_key(ApiKey("hash-3", "s2", "Other", "sk_ghi", T0, "cli"))
    assert store.get_api_key("hash-1") == ApiKey("hash-1", "s1", "CI", "sk_abc", T0, "ada@example.com")
    assert store.get_api_key("nope") is None
    key = store.get_api_key("hash-2")
    key.last_used_ms, key.expires_ms, key.revoked_ms = T0 + 5, T0 + 9, T0 + 7
    store.update_api_key(key)
    assert store.get_api_key("hash-2") == key
    assert [k.name for k in store.list_api_keys("s1")] == ["CI", "Grafana"]
    assert [k.key_hash for k in store.list_api_keys("s2")] == ["hash-3"]


def test_audit_entries_newest_first_per_site(store):
    from app.store.base import AuditEntry
    for i, site_id in enumerate(["s1", "s1", "s2", "s1"]):
        store.add_audit(AuditEntry(site_id, T0 + i, f"id{i}", "ada@example.com", "visitor.erase", f"n{i}"))
    store.add_audit(AuditEntry("s1", T0 + 3, "id9", "cli", "api_key.create"))  # same millisecond: kept
    assert [e.detail for e in store.list_audit("s1")] == ["", "n3", "n1", "n0"]
    assert [e.entry_id for e in store.list_audit("s1", limit=2)] == ["id9", "id3"]
    assert store.list_audit("s2")[0] == AuditEntry("s2", T0 + 2, "id2", "ada@example.com", "visitor.erase", "n2")


def alert(key="spike@1", site_id="s1", fired_ms=T0, **fields):
    from app.store.base import Alert
    fields = {"rule_id": "traffic", "kind": "spike", "title": "Traffic is up", "text": "3x the usual", **fields}
    return Alert(site_id, key, fired_ms, **fields)


def test_an_alerts_key_is_added_once_and_alerts_are_listed_newest_first(store):
    first = alert("spike@1", details={"observed": 61, "expected": 20.5, "pages": [["/", 40]]})
    assert store.add_alert(first) is True
    assert store.add_alert(alert("spike@1", fired_ms=T0 + 9, title="again")) is False  # taken: nothing written
    assert store.add_alert(alert("drop@2", fired_ms=T0 + 5, kind="drop")) is True
    assert store.add_alert(alert("spike@1", site_id="s2")) is True  # keys are per site
    assert [a.key for a in store.list_alerts("s1")] == ["drop@2", "spike@1"]
    assert store.list_alerts("s1")[1] == first
    assert [a.key for a in store.list_alerts("s1", limit=1)] == ["drop@2"]
    first.deliveries = [{"channel": "email to ada@example.com", "ok": True, "detail": "sent", "attempts": 1}]
    store.update_alert(first)
    assert store.list_alerts("s1")[1].deliveries == first.deliveries
    assert store.list_alerts("s9") == []


def test_purge_drops_alerts_past_retention_and_their_keys(store):
    """Alerts are statistics of a site: kept 13 months (ROLLUP_RETENTION_DAYS) like counters."""
    from app.store.base import ROLLUP_RETENTION_DAYS
    store.create_site(Site("s1", "S1", "pk_s1", ["example.com"], "UTC", T0))
    now = T0 + (ROLLUP_RETENTION_DAYS + 30) * DAY_MS
    cutoff = now - ROLLUP_RETENTION_DAYS * DAY_MS
    for key, fired_ms in (("old@1", cutoff - 1), ("kept@1", cutoff), ("new@1", now)):
        assert store.add_alert(alert(key, fired_ms=fired_ms))
    assert store.purge(now)["alerts"] == 1
    assert sorted(a.key for a in store.list_alerts("s1")) == ["kept@1", "new@1"]
    assert store.add_alert(alert("kept@1", fired_ms=now)) is False  # a kept key is still taken
    assert store.add_alert(alert("old@1", fired_ms=now)) is True  # the purged one's claim went with it


def test_of_processes_adding_one_alert_at_once_one_adds_it(store):
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(4) as pool:
        added = list(pool.map(lambda i: store.add_alert(alert("goal@20425", fired_ms=T0 + i)), range(4)))
    assert sorted(added) == [False, False, False, True]
    assert len(store.list_alerts("s1")) == 1


def test_a_visitors_data_is_read_and_erased_and_nobody_elses(store, site, ingest, make_event):
    for user_id, session_id in (("ada", "s-a1"), ("ada", "s-a2"), ("bob", "s-b1")):
        ingest(make_event(user_id=user_id, session_id=session_id),
               make_event(user_id=user_id, session_id=session_id, type="heartbeat"))
    data = store.visitor_data(site.site_id, "ada")
    assert len(data.events) == 4 and {e["user_id"] for e in data.events} == {"ada"}
    assert sorted(s.session_id for s in data.sessions) == ["s-a1", "s-a2"]
    assert data.visitor.user_id == "ada"
    assert store.erase_visitor(site.site_id, "ada") == {"events": 4, "sessions": 2, "visitors": 1}
    gone = store.visitor_data(site.site_id, "ada")
    assert (gone.events, gone.sessions, gone.visitor) == ([], [], None)
    assert store.get_sessions(site.site_id, ["s-a1", "s-a2"]) == {}
    assert {e["user_id"] for e in store.recent_events(site.site_id, 10)} == {"bob"}
    assert len(store.visitor_data(site.site_id, "bob").events) == 2
    assert store.erase_visitor(site.site_id, "ada") == {"events": 0, "sessions": 0, "visitors": 0}


def test_delete_site_deletes_its_records_and_traffic_only(store):
    from app.store.base import ApiKey, AuditEntry
    TODAY = T0 // DAY_MS  # noqa: N806 - a day the purge keeps
    for site_id in ("s1", "s2"):
        store.create_site(Site(site_id, site_id, f"pk_{site_id}", [f"{site_id}.example"], "UTC", T0))
        store.put_membership(Membership(site_id, "u1", "owner", T0))
        store.create_public_link(PublicLink(f"h-{site_id}", site_id, "", T0, "u1"))
        store.put_invitation(Invitation(site_id, "ada@example.com", "viewer", "cli", T0))
        store.create_api_key(ApiKey(f"k-{site_id}", site_id, "", "sk_", T0, "cli"))
        store.add_audit(AuditEntry(site_id, T0, "a", "cli", "site.create"))
        store.add_alert(alert(site_id=site_id))
        store.append_events([record(f"e-{site_id}", site_id=site_id)])
        store.apply(Changes(sessions=[session(site_id=site_id)],
                            counters={CounterKey(site_id, TODAY, "pageviews", "", "", "day"): 1}))
    store.delete_site("s1")
    store.purge(T0)  # DynamoDB deletes a site's traffic there (hourly on AWS); SQLite has already
    assert store.get_site("s1") is None and store.get_site_by_key("pk_s1") is None
    assert store.site_members("s1") == [] and store.get_public_link("h-s1") is None
    assert [i.site_id for i in store.email_invitations("ada@example.com")] == ["s2"]
    assert store.get_api_key("k-s1") is None and store.list_audit("s1") == [] and store.list_alerts("s1") == []
    assert store.recent_events("s1", 10) == [] and store.get_sessions("s1", ["sess1"]) == {}
    assert store.read_counters("s1", "pageviews", "", TODAY, TODAY + 1, grain="day") == []
    # the other site keeps everything
    assert store.get_site("s2") is not None and store.get_public_link("h-s2") is not None
    assert store.get_api_key("k-s2") is not None and len(store.list_audit("s2")) == 1
    assert store.add_alert(alert(site_id="s2")) is False  # still taken: its history is kept
    assert len(store.recent_events("s2", 10)) == 1 and len(store.get_sessions("s2", ["sess1"])) == 1
    assert [r.n for r in store.read_counters("s2", "pageviews", "", TODAY, TODAY + 1, grain="day")] == [1]


def test_the_store_answers_a_health_check(store):
    store.check()  # raises StoreError when it cannot answer
