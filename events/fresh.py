"""A sample POST (api-post-events.json, or the one named: tracker-post-events.json, through the
tracker function's URL) with its events moved to the last minute, as JSON on stdout: the
ingestion API refuses events over 24 hours old, so the committed sample is stale a day after it
was written. The events keep their spacing (a heartbeat 30 s after its page view).

    python3 events/fresh.py > /tmp/post.json
    .venv-sam/bin/sam local invoke WebFunction -e /tmp/post.json --env-vars events/local-env.json
    python3 events/fresh.py tracker-post-events.json > /tmp/tracker.json
    .venv-sam/bin/sam local invoke TrackerFunction -e /tmp/tracker.json --env-vars events/local-env.json
"""
import json
import sys
import time
from pathlib import Path

EVENTS = Path(__file__).resolve().parent


def fresh_post(sample: dict, now_ms: int) -> dict:
    """`sample` with every event's timestamp shifted by one amount, the last a second before now."""
    body = json.loads(sample["body"])
    shift = now_ms - 1_000 - max(event["timestamp"] for event in body["events"])
    for event in body["events"]:
        event["timestamp"] += shift
    return {**sample, "body": json.dumps(body)}


if __name__ == "__main__":
    sample = EVENTS / (sys.argv[1] if len(sys.argv) > 1 else "api-post-events.json")
    json.dump(fresh_post(json.loads(sample.read_text()), int(time.time() * 1000)), sys.stdout, indent=2)
    sys.stdout.write("\n")
