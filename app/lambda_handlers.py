"""AWS Lambda entry points (template.yaml): the web app, the events-stream aggregator and the
hourly schedule.

Everything heavy is imported and built on first use, once per container, so a cold start pays
only for what its function needs, and tests can start moto before any boto3 client exists.
"""
from __future__ import annotations

import functools
import logging
import os
import time

log = logging.getLogger(__name__)


# How soon after a rotation of the session secret a container signs with the new value.
SECRET_REFRESH_S = 300


class SessionSecret:
    """The key that signs logins and CSRF tokens, read at run time from Secrets Manager
    (LIVEINSIGHT_SECRET_ARN), not resolved into the function's environment, where whoever may
    read its configuration reads the key. Read once per container and again every
    SECRET_REFRESH_S: after a rotation, logins are signed with the new value, and those signed
    with the previous one still open (SECRET_KEY_FALLBACKS), so nobody is logged out."""

    def __init__(self, arn: str):
        self.arn, self.read_at = arn, -float("inf")

    def settings(self) -> dict:
        import boto3
        from botocore.exceptions import ClientError
        client = boto3.client("secretsmanager")
        current = client.get_secret_value(SecretId=self.arn, VersionStage="AWSCURRENT")["SecretString"]
        try:
            previous = [client.get_secret_value(SecretId=self.arn, VersionStage="AWSPREVIOUS")["SecretString"]]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            previous = []  # never rotated
        self.read_at = time.monotonic()
        return {"SECRET_KEY": current, "SECRET_KEY_FALLBACKS": previous}

    def refresh(self, app) -> None:
        if time.monotonic() - self.read_at >= SECRET_REFRESH_S:
            app.config.update(self.settings())


@functools.cache
def _session_secret() -> SessionSecret | None:
    arn = os.environ.get("LIVEINSIGHT_SECRET_ARN")
    return SessionSecret(arn) if arn else None


@functools.cache
def _flask_app():
    from app import create_app
    secret = _session_secret()
    app = create_app(secret.settings() if secret else None)
    # The app's log handler writes to stderr, which Lambda sends to CloudWatch: without this the
    # runtime's own root handler would write every line a second time.
    logging.getLogger("app").propagate = False
    return app


@functools.cache
def _store():
    from app.config import Config
    from app.store import open_store
    return open_store(Config.STORE_URL)


def web(event, context):
    """API Gateway (REST, v1 proxy) -> the Flask app."""
    import serverless_wsgi
    app = _flask_app()
    if (secret := _session_secret()) is not None:
        secret.refresh(app)
    return serverless_wsgi.handle_request(app, event, context)


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


def aggregate_records(store, records: list[dict]) -> dict:
    """Fold the INSERT records of a stream batch exactly once (app.aggregation.fold_log, as the
    single box's aggregator does) and name the records Lambda must deliver again.

    A record that is not an event can never succeed: it is reported every time until Lambda's
    retries run out and the batch goes to the dead-letter queue. A storage failure is reported
    too; Lambda retries from the lowest sequence number, and what was applied is skipped then.
    An event that cannot be aggregated is set aside and counted by the fold, not retried.
    """
    from app.aggregation import fold_log
    from app.store.base import LogEntry
    from app.store.dynamodb import event_from_item

    failed: list[str] = []
    entries: list[LogEntry] = []
    for record in records:
        if record.get("eventName") != "INSERT":
            continue
        number = record["dynamodb"]["SequenceNumber"]
        try:
            entries.append(LogEntry(number, event_from_item(record["dynamodb"]["NewImage"])))
        except (KeyError, TypeError, ValueError) as exc:
            log.error("stream record %s is not an event: %s", number, exc)
            failed.append(number)
    failed += [entry.position for entry in fold_log(store, entries).unapplied]
    return {"batchItemFailures": [{"itemIdentifier": number} for number in failed]}
