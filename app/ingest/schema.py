"""The wire format of one tracker event, validated and normalised with marshmallow."""
from __future__ import annotations

import math
import re
from urllib.parse import urlsplit

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates, validates_schema

from app.analytics.goals import MAX_CARRY

EVENT_TYPES = ("page_view", "heartbeat", "click", "custom", "conversion")
NAMED_TYPES = ("custom", "conversion")  # types that must carry a name
MAX_PROPS = 20
MAX_PROP_KEY = 64
MAX_PROP_VALUE = 256
FUTURE_TOLERANCE_MS = 5 * 60_000  # clock skew we accept from a visitor's browser
MAX_AGE_MS = 24 * 3_600_000  # older events are past raw retention: refuse them
# Numbers a person means: a conversion's value (an order's amount) and a property's number.
# Sums of many stay finite and exact enough, and DynamoDB takes them (it refuses > ~1e125).
MAX_VALUE = 1e12
MAX_PROP_NUMBER = 1e15


# Characters a visitor's browser may send that no report should show: C0 and C1 controls (NUL,
# terminal escapes), DEL, and the bidirectional overrides and isolates that can make a URL
# read backwards on the dashboard.
_CONTROLS = {code: None for code in (*range(0x00, 0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F),
                                     *range(0x2066, 0x206A))}
_CONTROLS.update({ord("\t"): " ", ord("\n"): " ", ord("\r"): " "})
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # JSON "\ud800" decodes to one: not storable UTF-8


def clean_text(text: str) -> str:
    """Text as it is stored: controls gone (tabs and newlines become spaces), lone UTF-16
    surrogates replaced by U+FFFD, so it is valid UTF-8 and shows as what it says."""
    text = text.translate(_CONTROLS)
    return _LONE_SURROGATE.sub("\ufffd", text) if not text.isascii() else text


class Text(fields.String):
    """A string field whose value is cleaned (clean_text) before it is validated."""

    def _deserialize(self, value, attr, data, **kwargs):
        return clean_text(super()._deserialize(value, attr, data, **kwargs))


class FirstVisit(fields.Field):
    """[created ms, landing URL, referrer]. What the tracker keeps in the visitor's storage may
    have been tampered with and must never make every later event of that visitor fail: a
    malformed value counts as missing, a text longer than MAX_FIRST_TEXT is cut (only its host
    and UTM parameters are used). Checked by hand: marshmallow's nested fields cost more than
    the rest of an event's validation."""

    def _deserialize(self, value, attr, data, **kwargs):
        if (isinstance(value, list) and len(value) == 3 and _natural(value[0])
                and isinstance(value[1], str) and isinstance(value[2], str)):
            # Not cleaned: only classified (ingest/enrich.py first_visit), whose parts are cleaned.
            return value[0], value[1][:MAX_FIRST_TEXT], value[2][:MAX_FIRST_TEXT]
        return None


class PreviousEvent(fields.Field):
    """A time in ms; malformed counts as missing (see FirstVisit)."""

    def _deserialize(self, value, attr, data, **kwargs):
        return value if _natural(value) else None


def _natural(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


MAX_FIRST_TEXT = 2048


class EventFieldsSchema(Schema):
    """What load_event loads with marshmallow: every field of an event but `carry`."""
    class Meta:
        unknown = EXCLUDE  # newer trackers may send fields this server does not know yet

    event_id = Text(required=True, validate=validate.Length(min=8, max=64), metadata={
        "description": "Unique per event (the tracker sends a random one): the same id sent again counts once."})
    type = fields.String(required=True, validate=validate.OneOf(EVENT_TYPES), metadata={
        "description": "What happened; custom and conversion events need a name."})
    timestamp = fields.Integer(required=True, strict=True, metadata={
        "description": "When it happened, in milliseconds since 1970-01-01 UTC (JavaScript's Date.now()): "
                       "at most 24 hours old and 5 minutes ahead of the server's clock."})
    user_id = Text(required=True, validate=validate.Length(min=1, max=64), metadata={
        "description": "The visitor: a random id the tracker keeps in localStorage."})
    session_id = Text(required=True, validate=validate.Length(min=1, max=64), metadata={
        "description": "The browser session (sessionStorage); 30 minutes without an event start a new visit."})
    url = Text(required=True, validate=validate.Length(max=2048), metadata={
        "description": "The page's absolute http(s) URL; its host must be one of the site's domains."})
    referrer = Text(load_default="", allow_none=True, validate=validate.Length(max=2048))
    title = Text(load_default="", allow_none=True, validate=validate.Length(max=512))
    name = Text(load_default="", allow_none=True, validate=validate.Length(max=128), metadata={
        "description": "The custom event's or conversion's name."})
    value = fields.Float(load_default=None, allow_none=True, allow_nan=False,
                         validate=validate.Range(-MAX_VALUE, MAX_VALUE), metadata={
                             "description": "A conversion's value (an amount)."})
    props = fields.Dict(keys=Text(validate=validate.Length(min=1, max=MAX_PROP_KEY)),
                        load_default=dict, allow_none=True, metadata={
                            "description": f"Up to {MAX_PROPS} properties: strings (at most {MAX_PROP_VALUE} "
                                           "characters), numbers or booleans."})

    first = FirstVisit(load_default=None, allow_none=True, metadata={
        "type": "array", "items": {}, "minItems": 3, "maxItems": 3,
        "description": "The visitor's first visit, which the tracker recorded when it made the visitor's "
                       "id: [when (ms since 1970), the landing page's URL, its referrer]. Gives the visitor's "
                       "cohort and the source of their first visit; unknown when missing or malformed."})
    prev = PreviousEvent(load_default=None, allow_none=True, metadata={
        "type": "integer", "description": "When this browser sent its previous event to the site (ms since 1970): "
                                          "a visitor comes back in a week or month once, however many visits they "
                                          "make in it. Ignored when malformed."})

    @validates("url")
    def _absolute_http_url(self, url: str, **_) -> None:
        try:
            parts = urlsplit(url)
        except ValueError as exc:
            raise ValidationError(f"not a valid URL: {exc}") from exc
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValidationError("must be an absolute http(s) URL")

    @validates("props")
    def _flat_small_props(self, props: dict | None, **_) -> None:
        if not props:
            return
        if len(props) > MAX_PROPS:
            raise ValidationError(f"at most {MAX_PROPS} properties")
        for key, value in props.items():
            if isinstance(value, str):
                if len(value) > MAX_PROP_VALUE:
                    raise ValidationError(f"{key}: at most {MAX_PROP_VALUE} characters")
            elif isinstance(value, bool) or value is None:
                continue
            elif isinstance(value, (int, float)):
                if not (isinstance(value, int) or math.isfinite(value)) or abs(value) > MAX_PROP_NUMBER:
                    raise ValidationError(f"{key}: numbers must be finite, at most {MAX_PROP_NUMBER:.0e} in size")
            else:
                raise ValidationError(f"{key}: values must be strings, numbers, booleans or null")

    @validates_schema
    def _name_for_named_types(self, data: dict, **_) -> None:
        if data["type"] in NAMED_TYPES and not data.get("name"):
            raise ValidationError(f"a {data['type']} event needs a name", "name")


class EventSchema(EventFieldsSchema):
    """The event as the API document describes it: with `carry`, which load_event reads itself
    (a marshmallow field costs ~3.5 µs an event, a tenth of loading one)."""
    carry = fields.String(allow_none=True, validate=validate.Length(max=MAX_CARRY), metadata={
        "description": "Where this browser is in the site's funnels across visits: the text the last answer's "
                       "Li-Carry header gave (empty or missing when none). Ignored when malformed."})


_schema = EventFieldsSchema()


def load_event(raw: object, now_ms: int) -> dict:
    """Validate one raw event; return it normalised or raise ValidationError."""
    if not isinstance(raw, dict):
        raise ValidationError("an event must be a JSON object")
    event = _schema.load(raw)
    carry = raw.get("carry")  # the tracker's (analytics/goals.py Carry): anything but its text counts as none
    event["carry"] = carry if isinstance(carry, str) and len(carry) <= MAX_CARRY else None
    if event["timestamp"] > now_ms + FUTURE_TOLERANCE_MS:
        raise ValidationError({"timestamp": ["is more than 5 minutes in the future"]})
    if event["timestamp"] < now_ms - MAX_AGE_MS:
        raise ValidationError({"timestamp": ["is older than 24 hours"]})
    event["timestamp"] = min(event["timestamp"], now_ms)  # a fast clock must not put events ahead
    for optional in ("referrer", "title", "name"):
        event[optional] = event[optional] or ""
    event["props"] = {key: clean_text(value) if isinstance(value, str) else value
                      for key, value in (event["props"] or {}).items()}
    return event


def describe(error: ValidationError) -> str:
    """A one-line reason for a rejected event, e.g. "type: Must be one of: ..."."""
    messages = error.messages
    if isinstance(messages, dict):
        parts = []
        for field_name, problems in messages.items():
            text = "; ".join(map(str, problems)) if isinstance(problems, list) else str(problems)
            parts.append(text if field_name == "_schema" else f"{field_name}: {text}")
        return ". ".join(parts)
    return "; ".join(map(str, messages)) if isinstance(messages, list) else str(messages)
