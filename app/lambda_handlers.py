"""AWS Lambda entry points (template.yaml): the web app, the events-stream aggregator and the
hourly schedule.

Everything heavy is imported and built on first use, once per container, so a cold start pays
only for what its function needs, and tests can start moto before any boto3 client exists.
"""
from __future__ import annotations

import functools
import logging

log = logging.getLogger(__name__)


@functools.cache
def _flask_app():
    from app import create_app
    return create_app()


@functools.cache
def _store():
    from app.config import Config
    from app.store import open_store
    return open_store(Config.STORE_URL)


def web(event, context):
    """API Gateway (REST, v1 proxy) -> the Flask app."""
    import serverless_wsgi
    return serverless_wsgi.handle_request(_flask_app(), event, context)


def stream(event, context):
    """A batch of the events table's stream -> sessions and counters (ReportBatchItemFailures)."""
    return aggregate_records(_store(), event["Records"])


def schedule(event, context):
    """EventBridge, hourly: month rollups and retention. serverless-wsgi ignores `aws.events`,
    hence a handler of its own."""
    from app.clock import SystemClock
    from app.retention import run_retention
    done = run_retention(_store(), SystemClock().now_ms())
    log.info("retention: %s", done)
    return done


def _event_key(event: dict) -> tuple[str, str, str]:
    return event["site_id"], event["session_id"], event["event_id"]


def _aggregate_in_site_timezone(store):
    """The pure aggregate(), given each site's time zone (days are the site's local days)."""
    from app.analytics.aggregate import aggregate

    @functools.cache
    def timezone(site_id: str) -> str:
        site = store.get_site(site_id)
        return site.timezone if site else "UTC"

    def fold(events, sessions, visitors):
        return aggregate(events, sessions, visitors, timezone(events[0]["site_id"]))
    return fold


def aggregate_records(store, records: list[dict]) -> dict:
    """Aggregate the INSERT records of a stream batch exactly once (see
    DynamoDBStore.apply_once) and name the records Lambda must deliver again.

    A record that is not an event can never succeed: it is reported every time until Lambda's
    retries run out and the batch goes to the dead-letter queue. A storage failure is reported
    too; Lambda retries from the lowest sequence number, and what was applied is skipped then.
    """
    from app.store.dynamodb import event_from_item

    failed: list[str] = []
    events: list[dict] = []
    sequence: dict[tuple[str, str, str], str] = {}
    for record in records:
        if record.get("eventName") != "INSERT":
            continue
        number = record["dynamodb"]["SequenceNumber"]
        try:
            event = event_from_item(record["dynamodb"]["NewImage"])
        except (KeyError, TypeError, ValueError) as exc:
            log.error("stream record %s is not an event: %s", number, exc)
            failed.append(number)
            continue
        events.append(event)
        sequence[_event_key(event)] = number
    unapplied = store.apply_once(events, _aggregate_in_site_timezone(store))
    failed += [sequence[_event_key(event)] for event in unapplied]
    return {"batchItemFailures": [{"itemIdentifier": number} for number in failed]}
