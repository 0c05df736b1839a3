"""The interface's language: what a user chose in Account, else what their browser asks for.

Flask-Babel chooses the language (and `force_locale` changes it for a block); `gettext` (`_`)
in Python and `_()` and `{% trans %}` in templates translate from the catalogues in
app/translations/ (`make translations` extracts, updates and compiles them), and Babel's formats
take the same language: numbers, dates and durations read as the language writes them.
The tracker, the JSON API and its OpenAPI document stay language-neutral.
"""
from __future__ import annotations

import functools
import unicodedata
from pathlib import Path

from babel import support
from flask import Flask, has_request_context, request
from flask_babel import Babel, get_locale
from flask_babel.speaklater import LazyString
from jinja2 import Environment

# Language code -> its own name, as the language menu shows it.
LANGUAGES = {"en": "English", "ko": "한국어"}
DEFAULT_LANGUAGE = "en"
TRANSLATIONS = Path(__file__).with_name("translations")  # where Flask-Babel looks by default too


def set_up_i18n(app: Flask) -> None:
    Babel(app, locale_selector=select_language, default_locale=DEFAULT_LANGUAGE)
    # Templates call gettext hundreds of times a page: straight to the language's catalogue
    # (Flask-Babel's own callables, which it has just installed, look the catalogue up again at
    # each call, a third of a report's render; force_locale still applies, through language()).
    # {% trans %} blocks read as extraction wrote them (babel.cfg: trimmed = true): a template's
    # line breaks and indents are not part of what a translator translates.
    install_gettext(app.jinja_env)
    app.jinja_env.globals["LANGUAGES"] = LANGUAGES


def install_gettext(env: Environment) -> None:
    """_(), ngettext and {% trans %} in a Jinja environment (the app's, and the emails' one,
    which runs without an app), in the language spoken now; `language()` for <html lang>."""
    env.add_extension("jinja2.ext.i18n")
    env.policies["ext.i18n.trimmed"] = True  # as babel.cfg extracts them
    env.install_gettext_callables(  # type: ignore[attr-defined]  (the i18n extension adds it)
        gettext=lambda message: catalogue(language()).ugettext(message),
        ngettext=lambda singular, plural, n: catalogue(language()).ungettext(singular, plural, n),
        newstyle=True)
    env.globals["language"] = language


def padded(text: str, width: int, *, right: bool = False) -> str:
    """`text` padded to `width` columns of a terminal or a monospaced font, where a Korean
    character takes two (str.ljust counts it as one)."""
    columns = sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in str(text))
    space = " " * max(0, width - columns)
    return space + str(text) if right else str(text) + space


@functools.cache
def catalogue(code: str) -> support.NullTranslations:
    """A language's compiled catalogue, read once per process (English, the source text, has none)."""
    return support.Translations.load(str(TRANSLATIONS), [code])


def select_language() -> str:
    """The signed-in user's choice, else the best match for the browser's Accept-Language."""
    from app.auth import access

    if not has_request_context() or request.blueprint == "api":
        return DEFAULT_LANGUAGE  # the JSON API is language-neutral: its messages are English
    user = access.current_user()
    if user is not None and user.language in LANGUAGES:
        return user.language
    return request.accept_languages.best_match(LANGUAGES, DEFAULT_LANGUAGE)


def gettext(message: str, **variables) -> str:
    """Flask-Babel's gettext (values in by name: `gettext("%(n)s visits", n=3)`), straight to the
    catalogue: Flask-Babel's looks it up again at each call, three times slower, and a report
    translates a few hundred labels and definitions."""
    text = catalogue(language()).ugettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, num: int, **variables) -> str:
    """The singular or the plural, as the language counts `num` (%(num)s in them is `num`)."""
    variables.setdefault("num", num)
    return catalogue(language()).ungettext(singular, plural, num) % variables


def lazy_gettext(message: str, **variables) -> LazyString:
    """gettext when the string is shown, not when it is made: for labels made at import time."""
    return LazyString(gettext, message, **variables)


def N_(text: str) -> str:
    """Marks `text` for translation where it is made, and leaves it English there: where a
    person reads it, gettext(text) translates it (the JSON API shows it as it is)."""
    return text


def language() -> str:
    """The language this request (or `force_locale` block) speaks: "en" or "ko"."""
    locale = get_locale()
    return locale.language if locale is not None and locale.language in LANGUAGES else DEFAULT_LANGUAGE
