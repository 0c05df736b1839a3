"""AWS Lambda entry points (template.yaml): the web app, the events-stream aggregator (and the
goal alerts its batches reach, and the live pushes to the dashboards watching its sites), the
WebSocket API's connections, the hourly schedule and the every-minute alerts; and Amazon SES,
which sends their email.

Everything heavy is imported and built on first use, once per container, so a cold start pays
only for what its function needs, and tests can start moto before any boto3 client exists.
"""
from __future__ import annotations

import functools
import json
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
    # The Alerts page's test sends go through SES and SNS too (its notifier is made on first use).
    app.extensions["liveinsight.notifier_channels"] = _with_aws_channels
    # The app's log handler writes to stderr, which Lambda sends to CloudWatch: without this the
    # runtime's own root handler would write every line a second time.
    logging.getLogger("app").propagate = False
    return app


@functools.cache
def _store():
    from app.config import Config
    from app.store import open_store
    return open_store(Config.STORE_URL)


@functools.cache
def _notifier():
    """What the stream and alerts functions send alerts and reports with (they have no Flask app)."""
    from app.alerts.notify import Notifier
    from app.config import Config
    notifier = _with_aws_channels(Notifier.from_config(Config.settings()))
    if (secret := _session_secret()) is not None:  # signs the reports' unsubscribe links, as the web app checks them
        notifier.secret_key = secret.settings()["SECRET_KEY"]
    return notifier


def _with_aws_channels(notifier):
    """Email through Amazon SES from LIVEINSIGHT_MAIL_FROM (an identity SES has verified; unset:
    no email), text messages through Amazon SNS where LIVEINSIGHT_SMS=sns; webhooks as anywhere."""
    from app.config import Config
    notifier.mailer = _ses_mailer(Config.MAIL_FROM) if Config.MAIL_FROM else None
    notifier.texter = _sns_texter() if os.environ.get("LIVEINSIGHT_SMS") == "sns" else None
    return notifier


def _ses_mailer(sender: str):
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError
    from app.alerts.channels import Delivery, email_message
    ses = boto3.client("ses")

    def send(to: list[str], subject: str, text: str, html: str, *, headers: dict[str, str] | None = None) -> Delivery:
        channel = "email to " + ", ".join(to)
        try:
            message = email_message(sender, to, subject, text, html, headers)
            ses.send_raw_email(Source=sender, RawMessage={"Data": message.as_bytes()})  # to: its To header
        except (BotoCoreError, ClientError, ValueError) as error:
            return Delivery(channel, False, f"Amazon SES: {error}"[:200], 1)
        return Delivery(channel, True, "sent", 1)
    return send


def _sns_texter():
    """Text messages through Amazon SNS (transactional: delivered even to numbers that opted out of
    promotions), each with what SNS answered."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError
    from app.alerts.channels import Delivery
    sns = boto3.client("sns")

    def send(phone: str, message: str) -> Delivery:
        try:
            sns.publish(PhoneNumber=phone, Message=message, MessageAttributes={
                "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}})
        except (BotoCoreError, ClientError) as error:
            return Delivery(f"text to {phone}", False, f"Amazon SNS: {error}"[:200], 1)
        return Delivery(f"text to {phone}", True, "sent", 1)
    return send


def web(event, context):
    """API Gateway (REST, v1 proxy) -> the Flask app."""
    import serverless_wsgi
    app = _flask_app()
    if (secret := _session_secret()) is not None:
        secret.refresh(app)
    return serverless_wsgi.handle_request(app, event, context)


def stream(event, context):
    """A batch of the events table's stream -> sessions and counters (ReportBatchItemFailures),
    then the goal alerts the batch reached, sent within seconds of their events, and the new
    snapshot of each site to the dashboards watching it."""
    store = _store()
    entries, not_events = _stream_entries(event["Records"])
    done = _fold_entries(store, entries, not_events)
    sites = {entry.event["site_id"] for entry in entries}
    if os.environ.get("LIVEINSIGHT_LIVE_SOCKET_URL"):  # first: a webhook's retries may take seconds
        try:
            from app.live_sockets import push
            push(store, sites, _render_snapshot, _socket_send, _socket_close, int(time.time() * 1000))
        except Exception:  # noqa: BLE001  (counted already; the pages poll while no push comes)
            log.exception("live push after a stream batch failed")
    try:
        from app.alerts.evaluate import deliver_all, fold_alerts
        deliver_all(store, _notifier(), fold_alerts(store, sites, int(time.time() * 1000)))
    except Exception:  # noqa: BLE001  (counted already; the every-minute schedule evaluates them again)
        log.exception("goal alerts after a stream batch failed")
    return done


def live_socket(event, context):
    """The WebSocket API's $connect (a realtime page with its ticket: app/live_sockets.py) and
    $disconnect. A refused $connect is a 403 the page sees as a closed socket (it polls)."""
    from app.live_sockets import connect
    request = event["requestContext"]
    store, connection_id = _store(), request["connectionId"]
    if request["routeKey"] == "$connect":
        secret = _session_secret()
        if secret is None:
            return {"statusCode": 500, "body": "LIVEINSIGHT_SECRET_ARN is not set"}
        keys = secret.settings()
        token = (event.get("queryStringParameters") or {}).get("ticket", "")
        allowed = connect(store, [*keys["SECRET_KEY_FALLBACKS"], keys["SECRET_KEY"]], connection_id, token,
                          int(time.time() * 1000))
        return {"statusCode": 200} if allowed else {"statusCode": 403, "body": "no valid ticket"}
    if request["routeKey"] == "$disconnect":
        store.drop_live_socket(connection_id)
        return {"statusCode": 200}
    return {"statusCode": 400, "body": "the page sends nothing"}  # $default


@functools.cache
def _render_app():
    """The app the stream function renders snapshots with: it signs nothing, so its key is any."""
    import secrets
    from app import create_app
    logging.getLogger("app").propagate = False
    return create_app({"SECRET_KEY": secrets.token_hex(32)}, store=_store())


def _render_snapshot(site_id: str, language: str) -> str | None:
    from app.dashboard.views import live_snapshot_for
    return live_snapshot_for(_render_app(), site_id, None, language)


@functools.cache
def _connections():
    """API Gateway's management API of the WebSocket API: https://<id>.execute-api.../<stage>."""
    import boto3
    url = os.environ["LIVEINSIGHT_LIVE_SOCKET_URL"]
    return boto3.client("apigatewaymanagementapi", endpoint_url="https://" + url.split("://", 1)[1])


SOCKET_THREADS = 16  # posts to a site's sockets at once (each is an HTTPS request)


def _each_connection(call, connection_ids: list[str]) -> list[str]:
    """Call API Gateway for each connection, some at once; the connections it no longer has."""
    from concurrent.futures import ThreadPoolExecutor
    from botocore.exceptions import ClientError

    def gone(connection_id: str) -> bool:
        try:
            call(connection_id)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "GoneException":
                return True
            log.warning("live push to %s failed: %s", connection_id, error)
        return False
    with ThreadPoolExecutor(min(SOCKET_THREADS, len(connection_ids))) as pool:
        return [c for c, went in zip(connection_ids, pool.map(gone, connection_ids)) if went]


def _socket_send(connection_ids: list[str], data: str) -> list[str]:
    body = data.encode("utf-8")
    return _each_connection(lambda c: _connections().post_to_connection(ConnectionId=c, Data=body), connection_ids)


def _socket_close(connection_ids: list[str]) -> list[str]:
    return _each_connection(lambda c: _connections().delete_connection(ConnectionId=c), connection_ids)


def alerts(event, context):
    """EventBridge, every minute: every site's alert rules (app/alerts/evaluate.py)."""
    from app.alerts.evaluate import deliver_all, minute_alerts
    store = _store()
    fired = minute_alerts(store, int(time.time() * 1000))
    deliver_all(store, _notifier(), fired)
    return {"fired": [f"{site.site_id}: {alert.title}" for site, alert in fired]}


def schedule(event, context):
    """EventBridge, hourly: month rollups, journey digests and retention; every 5 minutes
    (`{"job": "sweep"}`) the purge alone, so that at 10,000 events a second each run deletes
    five minutes of raw data, not an hour's (docs/dynamodb.md); every minute (`{"job":
    "counters"}`) the counter deltas waiting in the journal that no batch has applied since
    they fell due (a quiet site's last visits). serverless-wsgi ignores `aws.events`, hence a
    handler of its own."""
    from app.clock import SystemClock
    from app.retention import run_retention
    now_ms = SystemClock().now_ms()
    job = (event or {}).get("job")
    if job == "counters":
        return {"counter_items": _store().apply_journals(now_ms)}
    if job == "sweep":
        done = {"deleted": _store().purge(now_ms)}
    else:
        done = run_retention(_store(), now_ms)
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
    return _fold_entries(store, *_stream_entries(records))


def _stream_entries(records: list[dict]) -> tuple[list, list[str]]:
    """The INSERT records' events as log entries, and the sequence numbers of those that are no
    event."""
    from app.store.base import LogEntry
    from app.store.dynamodb import event_from_item

    entries: list[LogEntry] = []
    not_events: list[str] = []
    for record in records:
        if record.get("eventName") != "INSERT":
            continue
        number = record["dynamodb"]["SequenceNumber"]
        try:
            entries.append(LogEntry(number, event_from_item(record["dynamodb"]["NewImage"])))
        except (KeyError, TypeError, ValueError) as exc:
            log.error("stream record %s is not an event: %s", number, exc)
            not_events.append(number)
    return entries, not_events


def _fold_entries(store, entries: list, not_events: list[str]) -> dict:
    """Fold the entries; Lambda delivers again what is no event and what could not be applied."""
    from app.aggregation import fold_log
    failed = not_events + [entry.position for entry in fold_log(store, entries).unapplied]
    return {"batchItemFailures": [{"itemIdentifier": number} for number in failed]}


MAX_STREAM_PAGES = 1_000  # get_records pages one dead batch may take (bounded: a stream can hand out empty pages)


def replay_dead_letters(store, queue_url: str, max_messages: int = 1_000, now_s: float | None = None) -> dict:
    """Fold again the stream batches the aggregator gave up on (`bin/liveinsight
    replay-dead-letters`, docs/aws.md). Each message of the dead-letter queue says where its
    batch is (Lambda's DDBStreamBatchInfo: the stream, the shard, the first and last sequence
    numbers), not what it held: the records are read back from the stream, which keeps them 24
    hours, and folded exactly once as the stream function folds them (what was applied is
    skipped), if they are at most MAX_RECORD_AGE_S old: a visit remembers its applied events
    no longer (app/store/dynamodb/folding.py). A message is deleted once all of its batch that
    can be is folded; one that fails again stays, to be looked at. At most `max_messages` are
    read."""
    import boto3
    from botocore.exceptions import ClientError

    from app.store.dynamodb.folding import MAX_RECORD_AGE_S
    sqs, streams = boto3.client("sqs"), boto3.client("dynamodbstreams")
    done = {"replayed": 0, "records": 0, "still_failing": 0, "gone": 0, "too_old": 0}
    now_s = time.time() if now_s is None else now_s
    seen = 0
    while seen < max_messages:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                       VisibilityTimeout=300).get("Messages", [])
        if not messages:
            break
        for message in messages:
            seen += 1
            batch = json.loads(message["Body"])["DDBStreamBatchInfo"]
            try:
                records = _stream_batch(streams, batch)
            except ClientError as error:  # past the stream's 24 hours, or the stream was replaced
                log.error("dead-letter batch %s of shard %s cannot be read back: %s",
                          batch["startSequenceNumber"], batch["shardId"], error)
                done["gone"] += 1
                continue
            young = [record for record in records if now_s - _created_s(record) <= MAX_RECORD_AGE_S]
            if len(young) < len(records):
                log.error("dead-letter batch %s of shard %s: %d records over %d hours old are not folded",
                          batch["startSequenceNumber"], batch["shardId"], len(records) - len(young),
                          MAX_RECORD_AGE_S // 3600)
                done["too_old"] += len(records) - len(young)
            if aggregate_records(store, young)["batchItemFailures"]:
                done["still_failing"] += 1
                continue
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            done["replayed"] += 1
            done["records"] += len(young)
    return done


def _created_s(record: dict) -> float:
    """When a stream record was written (boto3 parses the time; Lambda's events carry a number)."""
    created = record["dynamodb"]["ApproximateCreationDateTime"]
    return created.timestamp() if hasattr(created, "timestamp") else float(created)


def _stream_batch(streams, batch: dict) -> list[dict]:
    """The records of a dead-letter batch, from its first sequence number to its last."""
    first, last = int(batch["startSequenceNumber"]), int(batch["endSequenceNumber"])
    iterator = streams.get_shard_iterator(StreamArn=batch["streamArn"], ShardId=batch["shardId"],
                                          ShardIteratorType="AT_SEQUENCE_NUMBER",
                                          SequenceNumber=batch["startSequenceNumber"])["ShardIterator"]
    records: list[dict] = []
    for _ in range(MAX_STREAM_PAGES):
        page = streams.get_records(ShardIterator=iterator)
        for record in page["Records"]:
            number = int(record["dynamodb"]["SequenceNumber"])
            if number > last:
                return records
            if number >= first:
                records.append(record)
        iterator = page.get("NextShardIterator")
        if iterator is None or (records and not page["Records"]):
            return records  # the shard ended, or it is read up to now
    raise RuntimeError(f"shard {batch['shardId']} still had records after {MAX_STREAM_PAGES} pages")
