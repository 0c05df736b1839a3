"""The JSON API fuzzed from its own OpenAPI document (schemathesis): whatever a client sends,
no answer is a 5xx, and every 4xx is the JSON error body. Bounded: a fixed number of examples
per operation, derandomized, so a run takes seconds and repeats exactly.

(schemathesis' pytest plugin does not run under pytest 9 here, so each operation's hypothesis
strategy is drawn from directly.)"""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from app import create_app
from app.auth import api_keys
from tests.conftest import CHROME_UA, T0

EXAMPLES = 150  # per operation and kind of data
MODES = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]


@pytest.mark.parametrize("backend", ["sqlite"])  # what is fuzzed is the HTTP layer, not the store
@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
def test_no_request_makes_a_server_error_and_every_refusal_is_json(store, clock, site, mode):
    # No rate limits: the fuzzer would meet 429s (tested in test_rate_limits.py) instead of the API.
    app = create_app({"TESTING": True, "SECRET_KEY": "fuzz", "RATE_LIMITS": False}, store=store, clock=clock)
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    secret = api_keys.create_key(store, site.site_id, "fuzz", "cli", T0)[1]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} == {"/api/events", "/api/stats", "/api/realtime", "/api/funnels"}
    seen: dict[int, int] = {}
    for operation in operations:
        # Valid credentials, so the fuzzer gets past authentication to what it generates
        # (without them every answer would be the same 401).
        key = site.tracker_key if operation.path == "/api/events" else secret

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def answer_is_sound(case):
            case.headers = {**(case.headers or {}), "X-API-Key": key, "User-Agent": CHROME_UA,
                            "Origin": "https://example.com"}
            response = case.call()
            seen[response.status_code] = seen.get(response.status_code, 0) + 1
            assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text[:300]}"
            if response.status_code >= 400:
                body = response.json()
                assert body["status"] == "error" and isinstance(body["message"], str) and body["message"]

        answer_is_sound()
    print(f"\n{mode.value}: answers by status {dict(sorted(seen.items()))}")
    assert any(status < 300 for status in seen) and any(400 <= status < 500 for status in seen)
