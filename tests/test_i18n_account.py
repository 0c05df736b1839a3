"""The interface's language: the browser's Accept-Language until a user chooses one in Account,
their choice after, and back to the browser's when they choose "Browser's language" (both
backends). The Korean words asserted here need the compiled catalogue
(app/translations/ko/LC_MESSAGES/messages.mo): `make translations`."""
from __future__ import annotations

import re

from tests.conftest import csrf_token

KOREAN = {"Accept-Language": "ko-KR,ko;q=0.9"}
ENGLISH = {"Accept-Language": "en"}


def page(client, url: str, headers: dict | None = None) -> str:
    response = client.get(url, headers=headers or {})
    assert response.status_code == 200
    return response.get_data(as_text=True)


def lang(html: str) -> str:
    return re.search(r'<html lang="([^"]*)">', html).group(1)


def choose(client, language: str, headers: dict | None = None):
    return client.post("/account/language", headers=headers or {},
                       data={"language": language, "csrf_token": csrf_token(client)})


def test_with_no_choice_the_browser_decides(client, store, admin):
    assert store.get_user(admin.user_id).language == ""
    korean = page(client, "/account", KOREAN)
    assert lang(korean) == "ko"
    english = page(client, "/account", ENGLISH)
    assert lang(english) == "en" and "Change password" in english and "비밀번호 변경" not in english
    unasked = page(client, "/account")  # no Accept-Language: English
    assert lang(unasked) == "en" and "Change password" in unasked
    assert lang(page(client, "/account", {"Accept-Language": "fr-FR,fr;q=0.9,ko;q=0.5"})) == "ko"
    assert lang(page(client, "/account", {"Accept-Language": "fr-FR,de;q=0.5"})) == "en"
    # the form offers the browser's language (chosen now) and each language by its own name
    assert re.search(r'<option value="" selected>[^<]+</option>', english)
    assert '<option value="ko" lang="ko">한국어</option>' in english
    assert '<option value="en" lang="en">English</option>' in english
    # the words (these need the compiled Korean catalogue)
    assert "비밀번호 변경" in korean and "Change password" not in korean


def test_a_chosen_language_wins_over_the_browsers(client, store, admin, log_in):
    done = choose(client, "ko", ENGLISH)
    assert done.status_code == 302 and done.headers["Location"] == "/account"
    assert store.get_user(admin.user_id).language == "ko"
    html = page(client, "/account", ENGLISH)
    assert lang(html) == "ko" and '<option value="ko" lang="ko" selected>' in html
    assert lang(page(client, "/users", ENGLISH)) == "ko"  # every page, not only Account
    # the choice is the user's, whichever browser they log in with; saving it kept their logins
    assert lang(page(log_in(admin), "/account", ENGLISH)) == "ko"
    assert lang(page(client, "/account", ENGLISH)) == "ko"
    # the words (these need the compiled Korean catalogue); the notice speaks the new choice
    assert "비밀번호 변경" in html and "Change password" not in html
    assert "언어를 저장했습니다." in html


def test_choosing_the_browsers_language_again(client, store, admin):
    choose(client, "ko")
    assert store.get_user(admin.user_id).language == "ko"
    done = choose(client, "", KOREAN)
    assert done.status_code == 302 and done.headers["Location"] == "/account"
    assert store.get_user(admin.user_id).language == ""
    english = page(client, "/account", ENGLISH)
    assert lang(english) == "en" and "Change password" in english
    assert lang(page(client, "/account", KOREAN)) == "ko"


def test_the_notice_after_choosing_is_in_the_chosen_language(client):
    """(With the Korean catalogue, the page before the choice is Korean: the notice follows the choice.)"""
    choose(client, "en", KOREAN)
    html = page(client, "/account", KOREAN)
    assert lang(html) == "en" and "Language saved." in html


def test_an_unknown_language_is_refused_and_changes_nothing(client, store, admin):
    refused = choose(client, "fr")
    html = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert "Unknown language &#39;fr&#39;: choose one in the list." in html and 'role="alert"' in html
    assert store.get_user(admin.user_id).language == ""
    hostile = choose(client, "<script>alert(1)</script>")
    assert hostile.status_code == 400 and "<script>alert(1)" not in hostile.get_data(as_text=True)
    assert store.get_user(admin.user_id).language == ""
    choose(client, "ko")
    again = choose(client, "ko-KR", ENGLISH)
    assert again.status_code == 400 and lang(again.get_data(as_text=True)) == "ko"
    assert store.get_user(admin.user_id).language == "ko"
    # and without the CSRF token nothing is saved either
    forged = client.post("/account/language", data={"language": "en"})
    assert forged.status_code == 400 and store.get_user(admin.user_id).language == "ko"


def test_choosing_needs_a_login(anon_client, admin, store):
    token = csrf_token(anon_client, "/login")
    response = anon_client.post("/account/language", data={"language": "ko", "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert store.get_user(admin.user_id).language == ""


def test_the_login_page_follows_the_browser(anon_client, admin):
    korean = page(anon_client, "/login", KOREAN)
    assert lang(korean) == "ko"
    english = page(anon_client, "/login", ENGLISH)
    assert lang(english) == "en" and "Log in" in english and "로그인" not in english
    unasked = page(anon_client, "/login")
    assert lang(unasked) == "en" and "Log in" in unasked
    # the words (these need the compiled Korean catalogue)
    assert "로그인" in korean and "Log in" not in korean


def test_a_report_address_that_cannot_be_read_is_a_400_in_the_readers_words(client, site):
    response = client.get(f"/sites/{site.site_id}?period=fortnight", headers=KOREAN)
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and lang(html) == "ko"
    assert "이 주소가 요청한 보고서는 표시할 수 없습니다: period: Must be one of" in html  # the detail is the API's


def test_a_definitions_button_is_named_in_the_readers_language(client, site):
    for headers, named in [(ENGLISH, 'aria-label="What is bounce rate?"'), (KOREAN, 'aria-label="이탈률: 뜻 보기"')]:
        html = page(client, f"/sites/{site.site_id}/widgets/metrics?period=7d", {**headers, "HX-Request": "true"})
        assert named in html
