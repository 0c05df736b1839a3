"""The language an alert or a report speaks to its reader, and a block that composes in it.

- To a user (an email): the language they chose in Account, if they chose one.
- Else (a user who did not choose, a webhook, a phone): the language of the site's owners: that
  of the first owner, by when they became one, who chose a language.
- Else English.

What is kept in the store (an alert's title, text and details) is English, as data is: each
message is composed in its reader's language when it is sent (`speaking`), and the Alerts page
composes the history in its own (messages.alert_words).

The aggregator's threads and the Lambda functions send without a Flask app of their own: there
`speaking` composes in a small app that only translates (app/translations/).
"""
from __future__ import annotations

import functools
from contextlib import contextmanager
from typing import Iterator

from flask import Flask, current_app, has_app_context, has_request_context
from flask_babel import force_locale

from app.i18n import DEFAULT_LANGUAGE, LANGUAGES, language, set_up_i18n
from app.store.base import Site, Store, User


def message_language(store: Store, site: Site, to: User | str | None = None) -> str:
    """The language of a message about `site` to `to` (a user, or an email address; None: to no
    one in particular, a webhook or a phone): "en", "ko"."""
    user = store.get_user_by_email(to) if isinstance(to, str) and to else to
    if isinstance(user, User) and user.language in LANGUAGES:
        return user.language
    owners = sorted((m for m in store.site_members(site.site_id) if m.role == "owner"),
                    key=lambda m: (m.created_ms, m.user_id))
    for membership in owners:
        owner = store.get_user(membership.user_id)
        if owner is not None and owner.language in LANGUAGES:
            return owner.language
    return DEFAULT_LANGUAGE


def page_language() -> str:
    """What a message sent from a page (a test from the Alerts page) speaks: the page's language;
    English where no page asks (the background gives its messages' language by name)."""
    return language() if has_request_context() else DEFAULT_LANGUAGE


@contextmanager
def speaking(code: str) -> Iterator[None]:
    """Translate (gettext, the emails' {% trans %}, the formatting filters) into `code` inside
    the block, with or without an app."""
    code = code if code in LANGUAGES else DEFAULT_LANGUAGE
    if has_app_context() and "babel" in current_app.extensions:
        with force_locale(code):
            yield
    else:
        with _translating_app().app_context(), force_locale(code):
            yield


@functools.cache
def _translating_app() -> Flask:
    """An app that only translates: its root is the app package, whose translations/ it reads."""
    app = Flask("app")
    set_up_i18n(app)
    return app
