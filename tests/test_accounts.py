"""Accounts: first run, login and logout, passwords, CSRF, roles per site, public links,
site management and the create-user command (both backends)."""
from __future__ import annotations

import re

import pytest

from app.auth import links
from app.auth.members import add_member
from app.auth.users import AccountError, authenticate, create_user
from app.store.base import Membership, User
from tests.conftest import ADMIN_PASSWORD, ADMIN_PASSWORD_HASH, T0, csrf_token


def page_token(response) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', response.get_data(as_text=True)).group(1)


def member(store, site, role: str, email: str | None = None) -> User:
    user = User(f"{role}-1", email or f"{role}@example.com", ADMIN_PASSWORD_HASH, T0)
    store.create_user(user)
    store.put_membership(Membership(site.site_id, user.user_id, role, T0))
    return user


def login(client, email: str, password: str, next_url: str | None = None):
    token = page_token(client.get("/login"))
    data = {"email": email, "password": password, "csrf_token": token}
    if next_url is not None:
        data["next"] = next_url
    return client.post("/login", data=data)


# -- first run
def test_first_run_asks_for_an_admin_with_the_operators_link_then_never_again(anon_client, app, store, caplog):
    from app.auth.views import setup_token
    token = setup_token_of(app)
    assert anon_client.get("/").headers["Location"].endswith("/setup")
    assert anon_client.get("/login").headers["Location"].endswith("/setup")
    for url in ("/setup", "/setup?token=guess"):  # whoever finds the instance first cannot take it
        refused = anon_client.get(url)
        assert refused.status_code == 403 and "setup link" in refused.get_data(as_text=True)
    assert f"/setup?token={token}" in caplog.text  # the operator reads it in the log
    form = anon_client.get(f"/setup?token={token}")
    assert form.status_code == 200 and "Create the admin account" in form.get_data(as_text=True)
    data = {"email": "Owner@Example.com", "password": "long enough pw", "password2": "long enough pw"}
    assert anon_client.post("/setup", data={**data, "csrf_token": page_token(form)}).status_code == 403  # no token
    with_token = {**data, "token": token}
    assert anon_client.post("/setup", data=with_token).status_code == 400  # no CSRF token
    assert store.list_users() == []
    short = anon_client.post("/setup", data={**with_token, "password": "short", "password2": "short",
                                             "csrf_token": page_token(form)})
    assert short.status_code == 400 and "10 to 200 characters" in short.get_data(as_text=True)
    done = anon_client.post("/setup", data={**with_token, "csrf_token": page_token(form)})
    assert done.status_code == 302
    [user] = store.list_users()
    assert user.email == "owner@example.com" and user.is_admin
    assert "long enough pw" not in user.password_hash and user.password_hash.startswith("scrypt:")
    assert anon_client.get("/account").status_code == 200  # logged in by the setup
    assert anon_client.get(f"/setup?token={token}").headers["Location"].endswith("/login")
    with app.app_context():
        assert setup_token() == token


def setup_token_of(app) -> str:
    with app.app_context():  # as `flask` gives every command
        result = app.test_cli_runner().invoke(args=["setup-url", "--base", "https://stats.example"])
    assert result.exit_code == 0, result.output
    return result.output.strip().rsplit("token=", 1)[1]


def test_setup_url_command_says_when_accounts_exist(app, admin):
    with app.app_context():
        result = app.test_cli_runner().invoke(args=["setup-url"])
    assert result.exit_code == 1 and "has accounts already" in result.output


# -- login and logout
def test_login_checks_the_password_and_returns_to_the_page_asked_for(anon_client, admin, site):
    assert anon_client.get("/sites/example/realtime").headers["Location"] == "/login?next=/sites/example/realtime?"
    wrong = login(anon_client, "admin@example.com", "not the password")
    assert wrong.status_code == 401 and "Wrong email or password." in wrong.get_data(as_text=True)
    unknown = login(anon_client, "nobody@example.com", ADMIN_PASSWORD)
    assert unknown.status_code == 401 and "Wrong email or password." in unknown.get_data(as_text=True)
    assert anon_client.get("/sites/example").status_code == 302
    ok = login(anon_client, "ADMIN@example.com ", ADMIN_PASSWORD, next_url="/sites/example/realtime")
    assert ok.status_code == 302 and ok.headers["Location"] == "/sites/example/realtime"
    assert anon_client.get("/sites/example/realtime").status_code == 200


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example"])
def test_login_never_redirects_off_site(anon_client, admin, target):
    response = login(anon_client, "admin@example.com", ADMIN_PASSWORD, next_url=target)
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_session_cookie_is_httponly_samesite_and_secure_over_https(app, admin):
    for base, secure in (("http://localhost", False), ("https://localhost", True)):
        client = app.test_client()
        token = page_token(client.get("/login", base_url=base))
        # over HTTPS, flask-wtf also wants a same-origin Referer (browsers send it)
        response = client.post("/login", base_url=base, headers={"Referer": f"{base}/login"}, data={
            "email": "admin@example.com", "password": ADMIN_PASSWORD, "csrf_token": token})
        assert response.status_code == 302
        cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("liveinsight_session="))
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert ("Secure" in cookie) is secure


def test_logout_needs_a_post_with_the_csrf_token(client, site):
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400  # no token: still logged in
    assert client.get("/sites/example").status_code == 200
    assert client.post("/logout", data={"csrf_token": csrf_token(client)}).status_code == 302
    assert client.get("/sites/example").status_code == 302


def copy_of_cookie(app, client):
    """Another browser holding a copy of this client's login cookie (a stolen cookie)."""
    thief = app.test_client()
    cookie = client.get_cookie("liveinsight_session")
    thief.set_cookie("liveinsight_session", cookie.value)
    return thief


def test_logout_ends_the_login_on_the_server_not_only_in_the_browser(app, client, site):
    thief = copy_of_cookie(app, client)
    assert thief.get("/sites/example").status_code == 200
    assert client.post("/logout", data={"csrf_token": csrf_token(client)}).status_code == 302
    assert thief.get("/sites/example").status_code == 302  # the copied cookie opens nothing now
    assert thief.get("/sites/example/widgets/current-visitors", headers={"HX-Request": "true"}).status_code == 204


def test_logging_out_one_browser_keeps_the_others(app, store, admin, log_in, site):
    laptop, phone = log_in(admin), log_in(admin)
    laptop.post("/logout", data={"csrf_token": csrf_token(laptop)})
    assert (laptop.get("/sites/example").status_code, phone.get("/sites/example").status_code) == (302, 200)


def test_log_out_everywhere_ends_every_login(app, store, admin, log_in, site):
    here, elsewhere = log_in(admin), log_in(admin)
    assert "Log out everywhere" in here.get("/account").get_data(as_text=True)
    done = here.post("/account/logout-everywhere", data={"csrf_token": csrf_token(here)})
    assert done.status_code == 302 and done.headers["Location"] == "/login"
    assert (here.get("/sites/example").status_code, elsewhere.get("/sites/example").status_code) == (302, 302)
    assert store.get_user(admin.user_id).logins == []


def test_a_login_ends_after_its_lifetime_however_often_it_is_renewed(app, client, clock, site):
    lifetime_ms = int(app.permanent_session_lifetime.total_seconds() * 1000)
    clock.advance(lifetime_ms - 60_000)
    assert client.get("/sites/example").status_code == 200  # renews the cookie, not the login
    clock.advance(60_000)
    assert client.get("/sites/example").status_code == 302


def test_a_user_keeps_at_most_twenty_logins(store, admin, log_in, site):
    first = log_in(admin)
    for _ in range(20):
        log_in(admin)
    assert len(store.get_user(admin.user_id).logins) == 20
    assert first.get("/sites/example").status_code == 302  # the oldest ended


def test_htmx_polls_of_a_logged_out_browser_are_sent_to_the_login_page(anon_client, admin, site):
    response = anon_client.get("/sites/example/widgets/current-visitors", headers={"HX-Request": "true"})
    assert response.status_code == 204
    assert response.headers["HX-Redirect"].startswith("/login?next=/sites/example/widgets/current-visitors")


def test_htmx_requests_carry_the_csrf_token_in_a_header(client, site):
    page = client.get("/sites/example").get_data(as_text=True)
    token = re.search(r"hx-headers='\{\"X-CSRFToken\": \"([^\"]+)\"\}'", page).group(1)
    assert client.post("/logout", headers={"X-CSRFToken": token, "HX-Request": "true"}).status_code == 302


# -- passwords
def test_changing_the_password_ends_every_other_session(app, store, admin, log_in, site):
    here, elsewhere = log_in(admin), log_in(admin)
    token = csrf_token(here)
    bad = here.post("/account", data={"current": "wrong", "new": "a new password", "new2": "a new password",
                                      "csrf_token": token})
    assert bad.status_code == 400 and "current password is not right" in bad.get_data(as_text=True)
    ok = here.post("/account", data={"current": ADMIN_PASSWORD, "new": "a new password",
                                     "new2": "a new password", "csrf_token": token})
    assert ok.status_code == 302
    assert here.get("/sites/example").status_code == 200
    assert elsewhere.get("/sites/example").status_code == 302
    assert authenticate(store, "admin@example.com", "a new password").user_id == admin.user_id
    assert authenticate(store, "admin@example.com", ADMIN_PASSWORD) is None


def test_account_rules(store):
    with pytest.raises(AccountError, match="not an email"):
        create_user(store, "not-an-email", "long enough pw", T0)
    with pytest.raises(AccountError, match="10 to 200"):
        create_user(store, "a@example.com", "x" * 201, T0)
    assert authenticate(store, "a@example.com", "x" * 10_000) is None  # unbounded input is refused fast


# -- roles
def test_what_each_role_may_open(store, site, log_in):
    viewer = log_in(member(store, site, "viewer"))
    admin = log_in(member(store, site, "admin"))
    assert viewer.get("/sites/example").status_code == 200
    assert viewer.get("/sites/example/widgets/pages", headers={"HX-Request": "true"}).status_code == 200
    assert viewer.get("/sites/example/settings").status_code == 403
    assert "Settings</a>" not in viewer.get("/sites/example").get_data(as_text=True)
    assert admin.get("/sites/example/settings").status_code == 200
    # a site the user has no role on does not exist for them
    stranger = User("stranger", "stranger@example.com", ADMIN_PASSWORD_HASH, T0)
    store.create_user(stranger)
    assert log_in(stranger).get("/sites/example").status_code == 404
    assert log_in(stranger).get("/sites/nope").status_code == 404


def post(client, url, **data):
    return client.post(url, data={**data, "csrf_token": csrf_token(client)})


def test_an_admin_can_neither_demote_nor_remove_an_owner(store, site, log_in):
    admin = log_in(member(store, site, "admin"))
    owner_user = member(store, site, "owner")
    assert post(admin, f"/sites/example/members/{owner_user.user_id}/role", role="viewer").status_code == 403
    assert post(admin, f"/sites/example/members/{owner_user.user_id}/remove").status_code == 403
    # Inviting the owner's email with a lower role changes nothing either, even once accepted.
    assert post(admin, "/sites/example/members", email="owner@example.com", role="viewer").status_code == 302
    assert store.get_membership("example", owner_user.user_id).role == "owner"
    owner = log_in(owner_user)
    assert post(owner, "/invitations/example/accept").status_code == 302
    assert store.get_membership("example", owner_user.user_id).role == "owner"
    assert post(admin, "/sites/example/members", email="new@example.com", role="owner").status_code == 403


def test_admins_manage_viewers_and_admins_owners_also_owners(store, site, log_in):
    admin = log_in(member(store, site, "admin"))
    owner_user = member(store, site, "owner")
    viewer_user = member(store, site, "viewer")
    assert post(admin, f"/sites/example/members/{viewer_user.user_id}/role", role="admin").status_code == 302
    assert store.get_membership("example", viewer_user.user_id).role == "admin"
    assert post(admin, f"/sites/example/members/{viewer_user.user_id}/role", role="owner").status_code == 403
    owner = log_in(owner_user)
    assert post(owner, f"/sites/example/members/{viewer_user.user_id}/role", role="owner").status_code == 302
    assert post(owner, f"/sites/example/members/{viewer_user.user_id}/remove").status_code == 302
    assert store.get_membership("example", viewer_user.user_id) is None
    last = post(owner, f"/sites/example/members/{owner_user.user_id}/role", role="viewer")
    assert last.status_code == 400 and "at least one owner" in last.get_data(as_text=True)
    last = post(owner, f"/sites/example/members/{owner_user.user_id}/remove")
    assert last.status_code == 400 and "at least one owner" in last.get_data(as_text=True)
    assert store.get_membership("example", owner_user.user_id).role == "owner"
    actions = [e.action for e in store.list_audit("example")]
    assert actions.count("member.set") == 2 and "member.remove" in actions


def test_inviting_tells_nothing_about_accounts_and_adds_no_one_without_consent(store, site, log_in):
    admin = log_in(member(store, site, "admin"))
    store.create_user(User("u9", "known@example.com", ADMIN_PASSWORD_HASH, T0))
    answers = []
    for email in ("known@example.com", "ghost@example.com"):
        response = admin.post("/sites/example/members", follow_redirects=True,
                              data={"email": email, "role": "viewer", "csrf_token": csrf_token(admin)})
        notice = re.search(r'<p class="notice" role="status">(.*?)</p>', response.get_data(as_text=True)).group(1)
        answers.append((response.status_code, notice.replace(email, "EMAIL")))
    assert answers[0] == answers[1]  # the same answer whether or not the email has an account
    assert store.get_membership("example", "u9") is None  # invited, not added
    assert {i.email for i in store.site_invitations("example")} == {"known@example.com", "ghost@example.com"}

    invitee = log_in(store.get_user("u9"))
    assert invitee.get("/sites/example").status_code == 404  # nothing until they accept
    sites_page = invitee.get("/").get_data(as_text=True)
    assert "Invitations" in sites_page and "admin@example.com invites you as viewer" in sites_page
    assert post(invitee, "/invitations/example/accept").headers["Location"] == "/sites/example"
    assert store.get_membership("example", "u9").role == "viewer"
    assert invitee.get("/sites/example").status_code == 200
    assert [i.email for i in store.site_invitations("example")] == ["ghost@example.com"]
    assert post(invitee, "/invitations/example/accept").status_code == 404  # used up
    assert "member.join" in [e.action for e in store.list_audit("example")]


def test_an_invitation_can_be_declined_or_cancelled(store, site, log_in):
    admin = log_in(member(store, site, "admin"))
    store.create_user(User("u9", "known@example.com", ADMIN_PASSWORD_HASH, T0))
    invitee = log_in(store.get_user("u9"))
    post(admin, "/sites/example/members", email="known@example.com", role="admin")
    assert "known@example.com" in admin.get("/sites/example/settings").get_data(as_text=True)
    assert post(invitee, "/invitations/example/decline").status_code == 302
    assert store.site_invitations("example") == [] and store.get_membership("example", "u9") is None
    post(admin, "/sites/example/members", email="known@example.com", role="admin")
    assert post(admin, "/sites/example/invitations/cancel", email="known@example.com").status_code == 302
    assert post(invitee, "/invitations/example/accept").status_code == 404
    assert store.get_membership("example", "u9") is None
    assert post(admin, "/sites/example/members", email="not an email", role="viewer").status_code == 400


def test_the_operator_adds_members_directly_but_keeps_an_owner(store, site):
    member(store, site, "owner", "o@example.com")
    with pytest.raises(AccountError, match="at least one owner"):
        add_member(store, "example", "o@example.com", "viewer", T0)


def test_adding_a_site_makes_its_creator_owner(store, log_in, clock):
    user = User("u1", "someone@example.com", ADMIN_PASSWORD_HASH, T0)
    store.create_user(user)
    client = log_in(user)
    token = csrf_token(client)
    bad = client.post("/sites/new", data={"name": "Blog", "domains": "not a domain!", "csrf_token": token})
    assert bad.status_code == 400 and "not a domain name" in bad.get_data(as_text=True)
    response = client.post("/sites/new", data={"name": "Blog", "domains": "blog.example, www.blog.example",
                                               "timezone": "Europe/Paris", "csrf_token": token})
    assert response.status_code == 302
    [membership] = store.user_memberships("u1")
    site = store.get_site(membership.site_id)
    assert membership.role == "owner" and site.domains == ["blog.example", "www.blog.example"]
    settings = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f'data-key="{site.tracker_key}"' in settings.replace("&#34;", '"').replace("&quot;", '"')


def test_only_an_owner_deletes_a_site_and_must_confirm(store, site, log_in, ingest, make_event, clock):
    ingest(make_event())
    admin = log_in(member(store, site, "admin"))
    assert admin.post("/sites/example/delete", data={"confirm": "example",
                                                     "csrf_token": csrf_token(admin)}).status_code == 403
    owner = log_in(member(store, site, "owner"))
    token = csrf_token(owner)
    unconfirmed = owner.post("/sites/example/delete", data={"confirm": "exampel", "csrf_token": token})
    assert unconfirmed.status_code == 400 and store.get_site("example") is not None
    assert owner.post("/sites/example/delete", data={"confirm": "example", "csrf_token": token}).status_code == 302
    assert store.get_site("example") is None
    store.purge(clock.now_ms())  # the schedule's (on DynamoDB the traffic goes there; SQLite has already)
    assert store.recent_events("example", 10) == []
    assert owner.get("/sites/example").status_code == 404


# -- users (instance admins)
def test_only_instance_admins_create_users(client, store, site, log_in):
    token = csrf_token(client)
    created = client.post("/users", data={"email": "new@example.com", "password": "long enough pw",
                                          "csrf_token": token})
    assert created.status_code == 302 and store.get_user_by_email("new@example.com") is not None
    duplicate = client.post("/users", data={"email": "new@example.com", "password": "long enough pw",
                                            "csrf_token": token})
    assert duplicate.status_code == 400 and "exists already" in duplicate.get_data(as_text=True)
    viewer = log_in(member(store, site, "viewer"))
    assert viewer.get("/users").status_code == 403
    assert viewer.post("/users", data={"email": "x@example.com", "password": "long enough pw",
                                       "csrf_token": csrf_token(viewer)}).status_code == 403


# -- public links
def test_a_public_link_shows_the_dashboards_read_only_until_revoked(store, site, log_in, anon_client):
    owner = log_in(member(store, site, "owner"))
    created = owner.post("/sites/example/links", data={"label": "Office TV", "csrf_token": csrf_token(owner)})
    url = re.search(r'<code class="secret" id="new-link">http://localhost(/share/[^<]+)</code>', created.get_data(as_text=True)).group(1)
    [link] = store.list_public_links("example")
    assert link.label == "Office TV" and url.split("/")[-1] not in link.token_hash  # only the hash is kept
    page = anon_client.get(url)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f'hx-get="{url}/widgets/pages' in html and 'href="/sites/example' not in html and "Settings</a>" not in html
    live = anon_client.get(f"{url}/realtime").get_data(as_text=True)
    assert f'hx-get="{url}/live"' in live and 'href="/sites/example' not in live
    assert anon_client.get(f"{url}/reports/pages.csv").status_code == 200
    assert anon_client.get(f"{url}/settings").status_code == 404  # not a view links open
    assert anon_client.get("/sites/example").status_code == 302  # the link grants nothing else
    owner.post(f"/sites/example/links/{link.token_hash}/revoke", data={"csrf_token": csrf_token(owner)})
    assert anon_client.get(url).status_code == 404
    assert anon_client.get(f"{url}/widgets/current-visitors").status_code == 404


def test_links_resolve_only_live_tokens(store, site):
    link, token = links.create_link(store, "example", "x", "u1", T0)
    assert links.resolve(store, token) == link
    assert links.resolve(store, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert links.resolve(store, "short") is None


# -- the command line
def test_create_user_command(app, store, site):
    runner = app.test_cli_runner()
    with app.app_context():  # as `flask` gives every command
        result = runner.invoke(args=["create-user", "cli@example.com", "--site", "example", "--role", "admin"],
                               input="long enough pw\nlong enough pw\n")
        again = runner.invoke(args=["create-user", "cli@example.com", "--admin", "--password", "long enough pw"])
    assert result.exit_code == 0, result.output
    user = store.get_user_by_email("cli@example.com")
    assert not user.is_admin and store.get_membership("example", user.user_id).role == "admin"
    assert authenticate(store, "cli@example.com", "long enough pw") is not None
    assert again.exit_code == 1 and "exists already" in again.output
