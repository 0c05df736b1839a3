"""Event validation: what the ingestion API accepts, normalises and refuses."""
import pytest
from marshmallow import ValidationError

from app.ingest.schema import describe, load_event
from tests.conftest import T0


def test_valid_event_is_normalised(make_event):
    event = load_event(make_event(referrer=None, title=None), T0)
    assert event["referrer"] == "" and event["title"] == "" and event["props"] == {}
    assert event["timestamp"] == T0


def test_unknown_fields_are_ignored(make_event):
    assert "colour" not in load_event(make_event(colour="red"), T0)


@pytest.mark.parametrize("change, reason", [
    ({"type": "purchase"}, "type: Must be one of"),
    ({"event_id": "short"}, "event_id"),
    ({"timestamp": "yesterday"}, "timestamp: Not a valid integer"),
    ({"timestamp": 1.5}, "timestamp"),
    ({"url": "javascript:alert(1)"}, "url: must be an absolute http(s) URL"),
    ({"url": "/relative"}, "url: must be an absolute http(s) URL"),
    ({"url": "http://[::1"}, "url: not a valid URL"),
    ({"user_id": ""}, "user_id"),
    ({"user_id": "x" * 65}, "user_id"),
    ({"type": "custom"}, "name: a custom event needs a name"),
    ({"type": "conversion", "name": "buy", "value": "lots"}, "value"),
    ({"props": {"k": {"nested": 1}}}, "props: k: values must be strings"),
    ({"props": {f"k{i}": i for i in range(21)}}, "props: at most 20 properties"),
    ({"props": {"k": "v" * 257}}, "props: k: at most 256 characters"),
    ({"timestamp": T0 + 6 * 60_000}, "timestamp: is more than 5 minutes in the future"),
    ({"timestamp": T0 - 25 * 3_600_000}, "timestamp: is older than 24 hours"),
])
def test_invalid_events_are_refused_with_a_reason(make_event, change, reason):
    with pytest.raises(ValidationError) as error:
        load_event(make_event(**change), T0)
    assert reason in describe(error.value)


def test_missing_required_field(make_event):
    raw = make_event()
    del raw["session_id"]
    with pytest.raises(ValidationError) as error:
        load_event(raw, T0)
    assert describe(error.value) == "session_id: Missing data for required field."


def test_not_an_object():
    with pytest.raises(ValidationError) as error:
        load_event(["page_view"], T0)
    assert describe(error.value) == "an event must be a JSON object"


def test_slightly_fast_clock_is_clamped_to_now(make_event):
    assert load_event(make_event(timestamp=T0 + 60_000), T0)["timestamp"] == T0


def test_conversion_keeps_name_and_value(make_event):
    event = load_event(make_event(type="conversion", name="signup", value=29), T0)
    assert (event["name"], event["value"]) == ("signup", 29.0)
