"""The interface's language: what a user chose in Account, else what their browser asks for.

Flask-Babel translates (`gettext` in Python, `_()` and `{% trans %}` in templates) from the
catalogues in app/translations/ (`make translations` extracts, updates and compiles them), and
gives Babel's formats the same locale: numbers, dates and durations read as the language does.
The tracker, the JSON API and its OpenAPI document stay language-neutral.
"""
from __future__ import annotations

from flask import Flask, has_request_context, request
from flask_babel import Babel, get_locale

# Language code -> its own name, as the language menu shows it.
LANGUAGES = {"en": "English", "ko": "한국어"}
DEFAULT_LANGUAGE = "en"


def set_up_i18n(app: Flask) -> None:
    Babel(app, locale_selector=select_language, default_locale=DEFAULT_LANGUAGE)
    # {% trans %} blocks read as extraction wrote them (babel.cfg: trimmed = true): a template's
    # line breaks and indents are not part of what a translator translates.
    app.jinja_env.policies["ext.i18n.trimmed"] = True
    app.jinja_env.globals.update(LANGUAGES=LANGUAGES, language=language)


def select_language() -> str:
    """The signed-in user's choice, else the best match for the browser's Accept-Language."""
    from app.auth import access

    if not has_request_context() or request.blueprint == "api":
        return DEFAULT_LANGUAGE  # the JSON API is language-neutral: its messages are English
    user = access.current_user()
    if user is not None and user.language in LANGUAGES:
        return user.language
    return request.accept_languages.best_match(LANGUAGES, DEFAULT_LANGUAGE)


def N_(text: str) -> str:
    """Marks `text` for translation where it is made, and leaves it English there: where a
    person reads it, gettext(text) translates it (the JSON API shows it as it is)."""
    return text


def language() -> str:
    """The language this request (or `force_locale` block) speaks: "en" or "ko"."""
    locale = get_locale()
    return locale.language if locale is not None and locale.language in LANGUAGES else DEFAULT_LANGUAGE
