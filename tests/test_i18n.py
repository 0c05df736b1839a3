"""The interface's languages: every string a person reads is marked for translation, every
catalogue translates every marked string and is compiled, and figures, dates and names read as
the language writes them (app/i18n.py, app/dashboard/formatting.py, docs/translating.md)."""
from __future__ import annotations

import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from flask_babel import force_locale
from jinja2 import Environment, FileSystemLoader

from app.dashboard import formatting
from app.i18n import LANGUAGES, catalogue, install_gettext, language
from app.ingest.sources import CHANNELS
from tests.conftest import T0

ROOT = Path(__file__).resolve().parents[1]
CATALOGUES = ROOT / "app" / "translations"
TEMPLATES = ROOT / "templates"
TRANSLATED = sorted(set(LANGUAGES) - {"en"})  # English is the source text

# ------------------------------------------------------------ marked strings in templates
# Words a template may show as they are, in any language: the brand, and codes.
AS_THEY_ARE = {"LiveInsight", "UTM", "CSV", "API", "JSON", "URL", "HTTPS", "CSP", "OK", "Slack", "Discord"}
READ_ATTRIBUTES = {"title", "aria-label", "placeholder", "alt"}
NOT_TEXT = {"script", "style", "code", "pre", "kbd", "samp"}  # code, and what runs
PLACEHOLDER = " § "  # where a Jinja expression or tag stood (inside a tag, an attribute of its own)
ENGLISH = re.compile(r"[A-Za-z]{2,}")
# An example in an input (placeholder="example.com", "/pricing", "Grafana") is data, as a value is.
EXAMPLE = re.compile(r"^\S+$")


def _unmarked_words(text: str) -> list[str]:
    text = text.replace(PLACEHOLDER.strip(), " ")
    return [w for w in ENGLISH.findall(text) if w not in AS_THEY_ARE]


class _TextFinder(HTMLParser):
    """Visible text and read attributes of a template's markup (Jinja replaced by PLACEHOLDER)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found, self.skipping = [], []

    def handle_starttag(self, tag, attrs):
        if tag in NOT_TEXT:
            self.skipping.append(tag)
        attrs = dict(attrs)
        read = [value for name, value in attrs.items() if name in READ_ATTRIBUTES
                and not (name == "placeholder" and EXAMPLE.match(value.strip()))]
        if tag in ("input", "button") and (attrs.get("type") or "") in ("submit", "button"):
            read.append(attrs.get("value"))
        for value in read:
            if value and _unmarked_words(value):
                self.found.append(f"<{tag}> attribute: {value.strip()!r}")

    def handle_endtag(self, tag):
        if self.skipping and self.skipping[-1] == tag:
            self.skipping.pop()

    def handle_data(self, data):
        if not self.skipping and _unmarked_words(data):
            self.found.append(repr(" ".join(data.replace(PLACEHOLDER.strip(), "…").split())))


# A string literal in an expression that reads like English words ("Direct", "never used"):
# text a person reads, unless it is the argument of a gettext call (not "wide-all main-chart":
# CSS classes, paths and keys have hyphens, slashes or underscores).
ENGLISH_LITERAL = re.compile(r"^(?![^-/_]*[-/_])(?:[A-Z][a-z]+(?:\W|$)|.*[A-Za-z]{2,} [A-Za-z]{2,})")
GETTEXT_CALLS = {"_", "gettext", "ngettext", "pgettext"}


def unmarked(source: str) -> list[str]:
    """The English a template shows outside gettext and {% trans %}: text, read attributes, and
    literal strings it prints."""
    markup, found, in_trans, previous = [], [], False, []
    for _, kind, value in Environment(extensions=["jinja2.ext.i18n"]).lex(source):
        if kind == "name" and previous[-1:] == ["block_begin"] and value in ("trans", "endtrans"):
            in_trans = value == "trans"
        if kind == "data" and not in_trans:
            markup.append(value)
        elif kind in ("variable_begin", "block_begin") and not in_trans:
            markup.append(PLACEHOLDER)
        elif kind == "string" and not in_trans and ENGLISH_LITERAL.match(value[1:-1]) and _unmarked_words(value) and not (
                previous[-2:-1] and previous[-2] in GETTEXT_CALLS):
            found.append(f"literal {value[1:-1]!r}")  # (the lexer's string keeps its quotes)
        if kind not in ("whitespace", "comment", "linecomment"):
            previous.append(value if kind == "name" else kind)
    finder = _TextFinder()
    finder.feed("".join(markup))
    return found + finder.found


@pytest.mark.parametrize("template", sorted(p.relative_to(TEMPLATES).as_posix() for p in TEMPLATES.rglob("*.*")))
def test_every_string_a_template_shows_is_marked_for_translation(template):
    left = unmarked((TEMPLATES / template).read_text(encoding="utf-8"))
    assert not left, f"mark for translation in templates/{template}: " + "; ".join(left)


def test_the_checker_finds_unmarked_text_attributes_and_literals():
    assert unmarked('<p class="x">Hello {{ name }}</p>') == ["'Hello …'"]
    assert unmarked('<a title="Open it" href="/a">{{ _("Open") }}</a>') == ["<a> attribute: 'Open it'"]
    assert unmarked("{{ 'never used' if x else y }}") == ["literal 'never used'"]
    assert unmarked('<p>{{ _("Hello") }} {% trans n=1 %}{{ n }} visit{% endtrans %}</p>') == []
    assert unmarked("<code>&lt;script src=x&gt;</code><p>LiveInsight · CSV</p>{{ w.rows['page'] }}") == []


# --------------------------------------------------------------------------- catalogues
def _extracted(tmp_path: Path):
    """What `make translations` would extract now (the same command and keywords)."""
    pot = tmp_path / "messages.pot"
    subprocess.run([str(Path(sys.executable).with_name("pybabel")), "-q", "extract", "-F", "babel.cfg",
                    "-k", "lazy_gettext", "-k", "_l", "--no-wrap", "-o", str(pot), "."],
                   cwd=ROOT, check=True, timeout=120)
    with pot.open("rb") as f:
        return read_po(f)


def _ids(catalog) -> set:
    return {m.id for m in catalog if m.id}


def _pairs(catalog) -> dict:
    """msgid -> translation(s), plurals as tuples (a .mo reads them back as lists)."""
    as_key = lambda x: tuple(x) if isinstance(x, (list, tuple)) else x  # noqa: E731
    return {as_key(m.id): as_key(m.string) for m in catalog if m.id}


def _placeholders(text: str) -> set[str]:
    return set(re.findall(r"%\(\w+\)[sd]", text))


def test_the_template_catalogue_holds_every_marked_string(tmp_path):
    with (CATALOGUES / "messages.pot").open("rb") as f:
        committed = _ids(read_po(f))
    now = _ids(_extracted(tmp_path))
    assert now - committed == set(), "run `make translations`: messages.pot lacks strings marked since"
    assert committed - now == set(), "run `make translations`: messages.pot holds strings no longer marked"


@pytest.mark.parametrize("language", TRANSLATED)
def test_each_language_translates_every_string_and_is_compiled(tmp_path, language):
    po_path = CATALOGUES / language / "LC_MESSAGES" / "messages.po"
    with po_path.open("rb") as f:
        po = read_po(f)
    assert _ids(po) == _ids(_extracted(tmp_path)), "run `make translations`"
    for message in po:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert not message.fuzzy, f"{language}: fuzzy translation of {ids[0]!r}"
        assert all(strings), f"{language}: no translation of {ids[0]!r}"
        for text in strings:
            assert _placeholders(text) == _placeholders(ids[-1]), f"{language}: placeholders of {ids[0]!r}"
    with (CATALOGUES / language / "LC_MESSAGES" / "messages.mo").open("rb") as f:
        mo = read_mo(f)
    assert _pairs(mo) == _pairs(po), \
        "run `make translations`: messages.mo is not the compiled messages.po"


def test_every_language_is_packaged_for_lambda():
    kept = re.search(r"^BABEL_LOCALES = (.*)$", (ROOT / "lambda" / "Makefile").read_text(), re.M).group(1).split()
    assert set(LANGUAGES) <= set(kept)


# ------------------------------------------------------------------ figures and names
@pytest.fixture
def in_language(app):
    def speak(language):
        context = app.test_request_context("/")
        context.push()
        manager = force_locale(language)
        manager.__enter__()
        return lambda: (manager.__exit__(None, None, None), context.pop())
    return speak


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("language, expected", [
    ("en", ["12,345", "1,234.50", "13%", "0.9%", "2m 7s", "1h 1m", "45s", "just now", "4 min ago", "3 h ago",
            "Nov 18, 2026, 20:06", "South Korea", "Organic search", "Mobile", "Direct / none", "Unknown", "Direct",
            "€1,234.50", "₩1,235", "$12.00", "Other"]),
    ("ko", ["12,345", "1,234.50", "13%", "0.9%", "2분 7초", "1시간 1분", "45초", "방금", "4분 전", "3시간 전",
            "2026년 11월 18일 20:06", "대한민국", "자연 검색", "모바일", "직접 / 없음", "알 수 없음", "직접",
            "€1,234.50", "₩1,235", "US$12.00", "기타"]),
])
def test_figures_dates_and_names_read_as_the_language_writes_them(in_language, language, expected):
    done = in_language(language)
    try:
        assert [formatting.number(12345), formatting.number(1234.5), formatting.rate(12.9), formatting.rate(0.94),
                formatting.duration(127.4), formatting.duration(3671), formatting.duration(45),
                formatting.ago(2_000), formatting.ago(245_000), formatting.ago(3 * 3600_000 + 5),
                formatting.local_datetime(T0, "Asia/Seoul"),
                formatting.dimension_label("KR", "country"), formatting.dimension_label("search", "channel"),
                formatting.dimension_label("mobile", "device"), formatting.dimension_label("", "source"),
                formatting.dimension_label("ZZ", "country"), formatting.dimension_label("Direct", "source"),
                formatting.money(1234.5, "EUR"), formatting.money(1234.6, "KRW"), formatting.money(12, "USD"),
                formatting.dimension_label("Other", "browser")] == expected
    finally:
        done()


def test_every_channel_has_its_label_in_english_as_ingestion_names_it():
    assert {key: str(label) for key, label in formatting.CHANNEL_LABELS.items()} == CHANNELS


def test_every_period_has_its_name_in_english_as_the_api_names_it():
    from app.analytics.periods import PERIODS
    assert {key: str(name) for key, name in formatting.PERIOD_NAMES.items()} == PERIODS


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_map_names_every_country_in_korean_and_leaves_english_to_the_atlas(in_language):
    done = in_language("ko")
    try:
        names = formatting.map_names()
        assert names["410"] == "대한민국" and names["276"] == "독일" and len(names) > 150
    finally:
        done()
    done = in_language("en")
    try:
        assert formatting.map_names() == {}
    finally:
        done()


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_figures_written_by_python_are_what_babels_patterns_write(in_language, monkeypatch, language):
    """formatting writes figures with Python's format only for languages that write them as it
    does (German would not); Babel's patterns, which any language gets, agree for ours."""
    assert formatting.PYTHON_WRITES_FIGURES and not formatting._writes_figures_as_python("de")
    done = in_language(language)
    try:
        figures = lambda: [formatting.number(1234567), formatting.number(0.5),  # noqa: E731
                           formatting.percent(12.94, 1), formatting.rate(100), formatting.percent(0.04)]
        fast = figures()
        monkeypatch.setattr(formatting, "PYTHON_WRITES_FIGURES", False)
        assert figures() == fast == ["1,234,567", "0.50", "12.9%", "100%", "0%"]
    finally:
        done()


def test_every_chart_interval_has_its_words():
    from app.analytics.periods import INTERVALS
    from app.dashboard import charts
    assert set(charts.INTERVAL_NAMES) == set(charts.PER_INTERVAL) == set(charts.STILL_COUNTING) == set(INTERVALS)


# ------------------------------------------------------------------ templates compiled per language
TEMPLATE_TEXTS = [  # each a way templates translate, checked against translating at every render
    '{{ _("Visitors") }}',
    '{% trans %}Bounce rate{% endtrans %}',
    '{{ _("Logged in as <strong>%(email)s</strong>.", email=email) }}',
    '{% trans %}Logged in as <strong>{{ email }}</strong>.{% endtrans %}',
    '{{ _("Our widgets are now 12%% more widgety.") }}',
    '{{ _("A text no catalogue has: <i>%(email)s</i>", email=email) }}',
    '{{ _("Visitors")|upper }} {{ ["x", _("Bounce rate")]|join(", ") }}',
    '{% autoescape false %}{{ _("Logged in as <strong>%(email)s</strong>.", email=email) }}{% endautoescape %}',
    '{{ _(word) }}',
    '{% trans count=n %}{{ count }} visitor{% pluralize %}{{ count }} visitors{% endtrans %}',
]


def _translating_at_render() -> Environment:
    """What install_gettext installed before templates were compiled per language."""
    env = Environment(autoescape=True, extensions=["jinja2.ext.i18n"])
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lambda message: catalogue(language()).ugettext(message),
        ngettext=lambda singular, plural, n: catalogue(language()).ungettext(singular, plural, n), newstyle=True)
    return env


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("language_code", list(LANGUAGES))
@pytest.mark.parametrize("text", TEMPLATE_TEXTS)
def test_a_template_compiled_in_a_language_renders_as_translating_at_render_did(in_language, language_code, text):
    compiled = Environment(autoescape=True)
    install_gettext(compiled)
    values = {"email": "<a&b>", "word": "Visitors", "n": 2}
    done = in_language(language_code)
    try:
        expected = _translating_at_render().from_string(text).render(values)
        assert compiled.from_string(text).render(values) == expected
    finally:
        done()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_templates_are_compiled_translated_and_kept_per_language(in_language, tmp_path):
    (tmp_path / "page.html").write_text('<h1>{{ _("Visitors") }}</h1>')
    env = Environment(loader=FileSystemLoader(tmp_path), autoescape=True)
    install_gettext(env)
    done = in_language("ko")
    try:  # the text is in the template's code: nothing is looked up at render
        assert "yield '방문자'" in env.compile('{{ _("Visitors") }}', raw=True)
    finally:
        done()
    for language_code, heading in [("ko", "<h1>방문자</h1>"), ("en", "<h1>Visitors</h1>"), ("ko", "<h1>방문자</h1>")]:
        done = in_language(language_code)
        try:
            assert env.get_template("page.html").render() == heading
        finally:
            done()
