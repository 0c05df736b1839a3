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
from babel.numbers import format_currency
from flask import Flask, has_request_context, request
from flask.globals import _cv_app
from flask_babel import Babel, get_locale
from flask_babel.speaklater import LazyString
from jinja2 import Environment, nodes
from jinja2.compiler import CodeGenerator
from jinja2.utils import LRUCache
from jinja2.visitor import NodeTransformer
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

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
    which runs without an app), in the language spoken now; `language()` for <html lang>.

    A template is compiled once per language, its fixed texts translated as it compiles
    (`_TranslatingCodeGenerator`): translating them at each render cost a fragment a quarter of
    its time. Plurals and texts made at run time (`_(reason)`) are translated as they render."""
    env.add_extension("jinja2.ext.i18n")
    env.policies["ext.i18n.trimmed"] = True  # as babel.cfg extracts them
    env.install_gettext_callables(  # type: ignore[attr-defined]  (the i18n extension adds it)
        gettext=lambda message: catalogue(language()).ugettext(message),
        ngettext=lambda singular, plural, n: catalogue(language()).ungettext(singular, plural, n),
        newstyle=True)
    env.globals["language"] = language
    env.code_generator_class = _TranslatingCodeGenerator
    env.cache = _CachePerLanguage(env.cache.capacity if isinstance(env.cache, LRUCache) else 400)


class _CachePerLanguage:
    """An environment's compiled templates, kept apart per language (they hold its texts)."""

    def __init__(self, capacity: int) -> None:
        self._caches = {code: LRUCache(capacity) for code in LANGUAGES}

    def get(self, key, default=None):
        return self._caches[language()].get(key, default)

    def __setitem__(self, key, template) -> None:
        self._caches[language()][key] = template


class _TranslatingCodeGenerator(CodeGenerator):
    """Compiles a template with its fixed texts already in the language spoken now."""

    def visit_Template(self, node: nodes.Template, frame=None) -> None:
        super().visit_Template(_FixedTextsTranslated(catalogue(language())).visit(node), frame)


class _FixedTextsTranslated(NodeTransformer):
    """Replaces `_("text")`, `gettext("text", name=value)` and `{% trans %}text{% endtrans %}` with
    the translated text, as the newstyle gettext the i18n extension installs would return it at
    each render: Markup where autoescaping is on, `%` applied (`%%` is a percent sign)."""

    def __init__(self, translations: support.NullTranslations) -> None:
        self.translations = translations

    def visit_Call(self, node: nodes.Call) -> nodes.Node:
        node = self.generic_visit(node)
        if not (isinstance(node.node, nodes.Name) and node.node.name in ("_", "gettext")
                and len(node.args) == 1 and isinstance(node.args[0], nodes.Const)
                and isinstance(node.args[0].value, str) and node.dyn_args is None
                and node.dyn_kwargs is None):
            return node
        text = self.translations.ugettext(node.args[0].value)
        if not node.kwargs:
            if "%" in text.replace("%%", ""):
                return node  # a lone % would be an error at render: leave it to say so there
            return _made_like(node, nodes.MarkSafeIfAutoescape(nodes.Const(text.replace("%%", "%"))))
        values = nodes.Dict([nodes.Pair(nodes.Const(k.key), k.value) for k in node.kwargs])
        return _made_like(node, nodes.Mod(nodes.MarkSafeIfAutoescape(nodes.Const(text)), values))


def _made_like(original: nodes.Node, new: nodes.Node) -> nodes.Node:
    return new.set_lineno(original.lineno).set_environment(original.environment)


def money(value: float, currency: str) -> str:
    """A sum in a currency as the language spoken writes it, to the currency's own minor unit:
    "€1,234.50", "₩1,235", "US$12.00" (Korean)."""
    return _money(value, currency, language())


@functools.lru_cache(maxsize=1024)  # Babel takes a twentieth of a millisecond; pages show the same sums at each refresh
def _money(value: float, currency: str, code: str) -> str:
    return format_currency(value, currency, locale=code)


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
    return _browser_language(request.headers.get("Accept-Language", ""))


@functools.lru_cache(maxsize=256)  # a browser sends the same header at every request: matched once
def _browser_language(accept_language: str) -> str:
    return parse_accept_header(accept_language, LanguageAccept).best_match(LANGUAGES, DEFAULT_LANGUAGE)


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
    # Where Flask-Babel keeps the locale it chose (or force_locale set), read without the
    # proxies get_locale goes through: a tenth of the time, and a report asks a few dozen times.
    app_context = _cv_app.get(None)
    state = app_context.g.__dict__.get("_flask_babel") if app_context is not None else None
    locale = getattr(state, "babel_locale", None) or get_locale()
    return locale.language if locale is not None and locale.language in LANGUAGES else DEFAULT_LANGUAGE
