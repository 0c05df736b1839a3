"""The Lambda entry points: the stream aggregator counts every event once whatever Lambda
redelivers (in process, under moto), and the SAM-built package serves every sample event in
events/ (sam validate --lint, sam build, then the built handlers in a subprocess under moto)."""
from __future__ import annotations

import importlib.metadata as metadata
import json
import marshal
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from botocore.exceptions import ClientError
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from app import create_app
from app.auth.sites import create_site
from app.ingest.enrich import Client
from app.ingest.pipeline import record_batch
from app.lambda_handlers import aggregate_records
from tests.conftest import CHROME_UA, MOTO_ENV, T0
from tests.dynamodb_stream import stream_records

ROOT = Path(__file__).resolve().parents[1]
SAM = ROOT / ".venv-sam" / "bin" / "sam"
BUILT = ROOT / ".aws-sam" / "build" / "WebFunction"
EVENTS = ROOT / "events"
LAMBDA_UNZIPPED_LIMIT_MB = 10  # the target for the package without boto3
# Imported on first use only, so a cold start does not pay for them (numpy alone: ~0.15 s).
LAZY_MODULES = ("boto3", "marshmallow", "serverless_wsgi", "numpy", "_datasketches", "app.store.dynamodb")
SEC = 1000
NO_FAILURES = {"batchItemFailures": []}


# ---------------------------------------------------------------- the stream aggregator
@pytest.fixture
def stored(store, site, clock):
    """Ingest tracker batches without aggregating them; return their stream records."""
    def send(*events):
        record_batch(store, site, list(events), Client("198.51.100.23", CHROME_UA), clock.now_ms())
        return stream_records(store)
    return send


def figures(store) -> dict[str, float]:
    """The counters a double count would inflate."""
    def total(metric, dimension="", grain="hour"):
        return sum(row.n for row in store.read_counters("example", metric, dimension, 0, 10**9, grain))
    return {**{m: total(m) for m in ("pageviews", "sessions", "visitors", "bounces", "duration_ms")},
            "events": total("events", "type", "day")}


def redelivery_from(records, result) -> list[dict]:
    """What Lambda delivers after a partial failure: from the lowest failed sequence number on."""
    lowest = min(int(f["itemIdentifier"]) for f in result["batchItemFailures"])
    return [r for r in records if int(r["dynamodb"]["SequenceNumber"]) >= lowest]


@pytest.mark.parametrize("backend", ["dynamodb"])
def test_a_batch_delivered_twice_counts_once(stored, store, make_event):
    records = stored(make_event(timestamp=T0 - 40 * SEC), make_event(type="heartbeat", timestamp=T0 - 10 * SEC),
                     make_event(url="https://example.com/b"))
    assert aggregate_records(store, records) == NO_FAILURES
    once = figures(store)
    assert aggregate_records(store, records) == NO_FAILURES
    assert figures(store) == once
    assert once == {"pageviews": 2, "sessions": 1, "visitors": 1, "bounces": 0,
                    "duration_ms": 40 * SEC, "events": 3}
    assert store.get_sessions("example", ["session-1"])["session-1"].events == 3


@pytest.mark.parametrize("backend", ["dynamodb"])
def test_a_retry_after_a_partial_failure_counts_once(stored, store, make_event, monkeypatch):
    # 30 events of one visit take several aggregation transactions; the second one fails.
    records = stored(*[make_event(type="page_view" if i % 3 == 0 else "heartbeat",
                                  url=f"https://example.com/p{i // 3}", timestamp=T0 - (29 - i) * SEC)
                       for i in range(30)])
    real, calls = store.client.transact_write_items, []

    def second_call_fails(**params):
        calls.append(params)
        if len(calls) == 2:
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "try again"}},
                              "TransactWriteItems")
        return real(**params)
    monkeypatch.setattr(store.client, "transact_write_items", second_call_fails)

    result = aggregate_records(store, records)
    assert result["batchItemFailures"]
    assert 0 < figures(store)["events"] < 30  # the first transaction stays applied
    assert aggregate_records(store, redelivery_from(records, result)) == NO_FAILURES
    assert figures(store) == {"pageviews": 10, "sessions": 1, "visitors": 1, "bounces": 0,
                              "duration_ms": 29 * SEC, "events": 30}


@pytest.mark.parametrize("backend", ["dynamodb"])
def test_a_record_that_is_no_event_is_reported_and_the_rest_applied(stored, store, make_event):
    records = stored(make_event(timestamp=T0 - 30 * SEC), make_event(type="heartbeat"))
    poison = records[0]
    del poison["dynamodb"]["NewImage"]["ts"]
    result = aggregate_records(store, records)
    assert result == {"batchItemFailures": [{"itemIdentifier": poison["dynamodb"]["SequenceNumber"]}]}
    assert figures(store)["events"] == 1


@pytest.mark.parametrize("backend", ["dynamodb"])
def test_two_tabs_aggregated_at_once_count_the_visitor_once(stored, store, make_event, monkeypatch):
    """Two shards' invocations race on one visitor: the loser's transaction is cancelled by
    the visitor's version check, and its retry sees the visitor already counted."""
    tab_1 = stored(make_event(session_id="tab-1", timestamp=T0 - SEC))
    tab_2 = stored(make_event(session_id="tab-2"))
    real, calls = store.client.transact_write_items, []

    def other_tab_commits_first(**params):
        calls.append(params)
        if len(calls) == 1:
            assert aggregate_records(store, tab_2) == NO_FAILURES
        return real(**params)
    monkeypatch.setattr(store.client, "transact_write_items", other_tab_commits_first)

    assert aggregate_records(store, tab_1) == NO_FAILURES
    assert len(calls) == 3  # tab 1 (cancelled), tab 2, tab 1 again
    assert (figures(store)["sessions"], figures(store)["visitors"]) == (2, 1)


# ---------------------------------------------------------------- the SAM-built package
def run(*command, **kwargs) -> subprocess.CompletedProcess:
    # No bytecode written into the build: it is what gets deployed, and Lambda finds none there.
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "PYTHONDONTWRITEBYTECODE": "1", **kwargs.pop("env", {})}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, **kwargs)


@pytest.fixture(scope="module")
def built():
    """`sam validate --lint` and `sam build` (no container), once for the module. The three
    functions share one Makefile build, which SAM never deduplicates: --parallel builds them
    at once (about half the time)."""
    if not SAM.exists():
        pytest.fail(f"the AWS SAM CLI is not installed at {SAM}: run `make sam` (make test installs it)")
    for command in ([SAM, "validate", "--lint"],
                    [SAM, "build", "--parallel", "--cached", "--build-dir", ".aws-sam/build",
                     "--cache-dir", ".aws-sam/cache"]):
        done = run(*map(str, command), cwd=ROOT)
        assert done.returncode == 0, f"{' '.join(map(str, command))} failed:\n{done.stdout}\n{done.stderr}"
    return BUILT


def _size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


@pytest.mark.sam
def test_the_package_has_the_app_and_its_files_but_not_boto3(built):
    for needed in ("app/lambda_handlers.py", "templates/base.html", "static/css/app.css",
                   "tracker/dist/liveinsight.min.js"):
        assert (built / needed).is_file(), needed
    assert not list(built.glob("boto*")), "the Lambda runtime provides boto3: do not package it"
    size = _size_mb(built)
    print(f"\nbuilt package: {size:.1f} MB unzipped")
    assert size <= LAMBDA_UNZIPPED_LIMIT_MB


@pytest.mark.sam
def test_the_bytecode_replaces_library_sources_and_names_lambdas_paths(built):
    """Bytecode names the file as Lambda unpacks it, not the build folder (whose length once
    took the package past its budget on CI); a library ships bytecode alone, the app both."""
    assert (built / "werkzeug" / "routing" / "map.pyc").is_file() and not (built / "werkzeug" / "routing" / "map.py").exists()
    assert (built / "app" / "lambda_handlers.py").is_file()
    for pyc, deployed in ((built / "werkzeug" / "routing" / "map.pyc", "/var/task/werkzeug/routing/map.py"),
                          (next((built / "app" / "__pycache__").glob("lambda_handlers.*.pyc")),
                           "/var/task/app/lambda_handlers.py")):
        code = marshal.loads(pyc.read_bytes()[16:])  # after the header: magic, flags, hash
        assert code.co_filename == deployed


@pytest.mark.sam
def test_the_handler_module_imports_only_the_app_package(built):
    """A cold start imports the handlers and Flask (via the app package), nothing heavier."""
    done = run(sys.executable, "-X", "importtime", "-c", "import app.lambda_handlers",
               cwd=built, env={"PYTHONPATH": str(built)})
    assert done.returncode == 0, done.stderr
    imported = {name: int(us) for us, name in re.findall(
        r"^import time:\s+\d+ \|\s+(\d+) \| +(\S+)$", done.stderr, re.M)}
    print(f"\nimport app.lambda_handlers: {imported['app.lambda_handlers'] / 1000:.0f} ms (the package's bytecode, none written)")
    assert not [name for name in LAZY_MODULES if name in imported]


# What the app asks of Babel, run on the built package, whose Babel keeps the root, en and ko
# locale data only, and on the venv's whole Babel.
BABEL_SCRIPT = """
import json
from babel import Locale
import babel
from app.dashboard import charts, countries
from app.i18n import catalogue

codes = sorted(c for c in Locale.parse("en").territories if len(c) == 2 and c.isalpha())
print(json.dumps({
    "babel": babel.__file__,
    "charts": [charts.axis_label("2026-03-01", "day"), charts.title("2026-03-01T14:00", "hour"),
               charts.title("2026-03-01", "week"), charts.axis_label("2026-03-01", "month"),
               charts.hour_labels([1772373600000], "Asia/Seoul")],
    "countries": {code: countries.country(code) for code in codes},
    "korean": [countries.country("KR", "ko").name, charts.axis_label("2026-03-01", "month", "ko"),
               catalogue("ko").ugettext("Visitors")],
    "from_numeric": {n: countries.alpha2_from_numeric(n) for n in ("410", "36", "276", "278", "999")},
}))
"""


@pytest.mark.sam
def test_the_pruned_babel_names_countries_and_dates_as_the_whole_one_does(built, tmp_path):
    assert sorted(p.name for p in (built / "babel" / "locale-data").iterdir()) == ["en.dat", "ko.dat", "root.dat"]
    assert not (built / "babel" / "messages").exists() and not (built / "pycountry").exists()
    done = run(sys.executable, "-c", BABEL_SCRIPT, cwd=tmp_path, env={"PYTHONPATH": str(built)})
    assert done.returncode == 0, done.stderr
    packaged = json.loads(done.stdout)
    assert packaged.pop("babel").startswith(str(built))
    assert packaged["charts"] == ["Mar 1", "Sun, Mar 1, 14:00", "Week of Mar 1, 2026", "Mar 2026", ["23:00"]]
    assert packaged["countries"]["KR"] == ["KR", "South Korea", "\U0001F1F0\U0001F1F7", "410"]
    assert packaged["countries"]["ZZ"] == ["", "Unknown", "", None]
    assert packaged["from_numeric"] == {"410": "KR", "36": "AU", "276": "DE", "278": None, "999": None}
    assert packaged["korean"] == ["대한민국", "2026년 3월", "방문자"]  # the compiled catalogue is packaged
    done = run(sys.executable, "-c", BABEL_SCRIPT, cwd=tmp_path, env={"PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    whole = json.loads(done.stdout)
    assert whole.pop("babel").startswith(sys.prefix)
    assert packaged == whole


def _requirements(path: Path) -> list[str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


NOT_PACKAGED = {"numpy"}  # datasketches' unused numpy
# The single box's server and rate limiter: on Lambda, API Gateway throttles (LIVEINSIGHT_RATE_LIMITS=off).
SINGLE_BOX_ONLY = ("gunicorn", "limits")


def test_the_build_runs_pip_from_the_interpreters_own_path_not_a_shim(tmp_path):
    """A version manager's `python3` shim (pyenv's) rehashes after each `python3 -m pip install`,
    and the rehashes of sam build's parallel builds race and fail it now and then: the Makefile
    asks the interpreter where it is and runs pip from there."""
    shim = tmp_path / "python3"
    shim.write_text('#!/bin/sh\necho /opt/real/bin/python3.11\n')  # what sys.executable says
    shim.chmod(0o755)
    done = subprocess.run(["make", "-n", "-f", str(ROOT / "lambda" / "Makefile"), "build-WebFunction",
                           "ARTIFACTS_DIR=/tmp/artifacts"], capture_output=True, text=True, timeout=30,
                          cwd=ROOT / "lambda", env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"})
    assert done.returncode == 0, done.stderr
    commands = [line for line in done.stdout.splitlines() if "pip install" in line or "compile_cold_start" in line]
    assert len(commands) == 2 and all(line.startswith('"/opt/real/bin/python3.11" ') for line in commands), commands


def test_the_lambda_lock_is_the_apps_requirements_and_all_they_need():
    """requirements-lambda.txt is installed with --no-deps: it must list every distribution the
    app's requirements need, as installed here, but for what is deliberately left out."""
    app = [r for r in _requirements(ROOT / "requirements.txt") if Requirement(r).name not in SINGLE_BOX_ONLY]
    lock = _requirements(ROOT / "requirements-lambda.txt")
    missing = set(app) - set(lock)
    assert not missing, f"add to requirements-lambda.txt (the Lambda package): {sorted(missing)}"
    locked = {canonicalize_name(Requirement(r).name) for r in lock}
    unlisted = _distributions_needed(app) - locked - NOT_PACKAGED
    assert not unlisted, f"pin in requirements-lambda.txt: {sorted(unlisted)}"
    installed = {canonicalize_name(Requirement(r).name): Requirement(r).specifier for r in lock}
    for name, specifier in installed.items():
        assert metadata.version(name) in specifier, f"{name}: the lock and the venv disagree"


def _distributions_needed(requirements: list[str]) -> set[str]:
    """The distributions the requirements name and, as installed here, all they require."""
    pending, needed = [Requirement(r) for r in requirements], set()
    while pending:
        requirement = pending.pop()
        if canonicalize_name(requirement.name) in needed:
            continue
        needed.add(canonicalize_name(requirement.name))
        for line in metadata.requires(requirement.name) or []:
            dependency = Requirement(line)
            extras = requirement.extras or {""}
            if dependency.marker is None or any(dependency.marker.evaluate({"extra": e}) for e in extras):
                pending.append(dependency)
    return needed


# The tracker function's app settings, as template.yaml's environment gives them.
TRACKER_SETTINGS = {"SERVES": "tracker", "RATE_LIMITS": True, "RATE_LIMIT_STORAGE": "store://",
                    "RATE_LIMIT_SITE": "18000 per minute"}


def load_template() -> dict:
    """template.yaml, with CloudFormation's tags read as their plain value (!Sub "a-${B}" -> "a-${B}")."""
    class Loader(yaml.SafeLoader):
        pass
    Loader.add_multi_constructor("!", lambda loader, suffix, node: (
        loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode) else None))
    return yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)


def test_the_stream_function_is_never_given_a_record_older_than_a_visit_remembers_its_events():
    """A visit forgets an applied event 23 hours after its arrival (folding.py): Lambda sends an
    older record to the dead-letter queue instead of the stream function, an hour before."""
    from app.store.dynamodb.folding import APPLIED_KEPT_MS, MAX_RECORD_AGE_S
    stream = load_template()["Resources"]["AggregateFunction"]["Properties"]["Events"]["EventsStream"]["Properties"]
    assert stream["MaximumRecordAgeInSeconds"] == MAX_RECORD_AGE_S == APPLIED_KEPT_MS // 1000 - 3600


def test_sam_local_env_vars_are_declared_in_the_template():
    """sam local only overrides variables the template declares (for all functions or one)."""
    template = load_template()
    declared = set(template["Globals"]["Function"]["Environment"]["Variables"])
    for resource in template["Resources"].values():
        declared |= set(resource.get("Properties", {}).get("Environment", {}).get("Variables", {}))
    local = json.loads((EVENTS / "local-env.json").read_text())
    assert set(local["Parameters"]) <= declared


class Calls:
    """(action, table's logical id, the index or None, the item's partition key or None) of
    every request a store makes, the actions a transaction or a batch holds counted as what IAM
    checks them as, each with the key IAM's dynamodb:LeadingKeys condition sees."""
    TABLES = {"sites": "SitesTable", "events": "EventsTable", "aggregates": "AggregatesTable",
              "accounts": "AccountsTable"}
    PARTITION_KEYS = {"SitesTable": "site_id", "EventsTable": "pk", "AggregatesTable": "pk", "AccountsTable": "pk"}
    TRANSACT_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "ConditionCheck": "ConditionCheckItem",
                        "Delete": "DeleteItem"}

    def __init__(self, store):
        self.prefix, self.seen = store.prefix, set()
        store.client.meta.events.register("before-parameter-build.dynamodb", self._record)

    def _table(self, name: str) -> str:
        return self.TABLES[name.removeprefix(f"{self.prefix}-")]

    def _key(self, table: str, item: dict | None) -> str | None:
        value = (item or {}).get(self.PARTITION_KEYS[table])
        return value.get("S") if isinstance(value, dict) else None

    def _record(self, model, params, **_):
        if model.name == "TransactWriteItems":
            for action in params["TransactItems"]:
                (kind, request), = action.items()
                table = self._table(request["TableName"])
                self.seen.add((self.TRANSACT_ACTIONS[kind], table, None,
                               self._key(table, request.get("Item") or request.get("Key"))))
        elif model.name == "BatchWriteItem":
            for name, requests in params["RequestItems"].items():
                table = self._table(name)
                self.seen |= {(model.name, table, None, self._key(table, (r.get("PutRequest") or {}).get("Item")
                                                                   or (r.get("DeleteRequest") or {}).get("Key")))
                              for r in requests}
        elif "RequestItems" in params:  # BatchGetItem: IAM checks each key too
            for name, request in params["RequestItems"].items():
                table = self._table(name)
                self.seen |= {(model.name, table, None, self._key(table, key)) for key in request["Keys"]}
        elif "TableName" in params:
            table = self._table(params["TableName"])
            key = self._key(table, params.get("Item") or params.get("Key"))
            if model.name == "Query" and "IndexName" not in params:  # the partition its condition names
                found = re.search(rf"\b{self.PARTITION_KEYS[table]} = (:\w+)", params["KeyConditionExpression"])
                key = params["ExpressionAttributeValues"][found.group(1)].get("S") if found else None
            self.seen.add((model.name, table, params.get("IndexName"), key))

    def take(self) -> set:
        seen, self.seen = self.seen, set()
        return seen


def with_the_stacks_delay(store, clock) -> None:
    """The store as the stack sets it: counter deltas wait `CounterDelaySeconds` in the journal."""
    store._now_ms = clock.now_ms
    store.counter_delay_ms = int(load_template()["Parameters"]["CounterDelaySeconds"]["Default"]) * 1000


def _denied(function: str, calls: set) -> list:
    """The calls the function's policy in template.yaml does not allow, its conditions on the
    items' partition keys (dynamodb:LeadingKeys) included."""
    import fnmatch
    statements = [s for policy in load_template()["Resources"][function]["Properties"]["Policies"]
                  for s in policy["Statement"]]

    def listed(value) -> list:
        return value if isinstance(value, list) else [value]

    def allowed(action, table, index, key):
        resource = f"${{{table}.Arn}}/index/{index}" if index else f"{table}.Arn"
        for statement in statements:
            if f"dynamodb:{action}" not in listed(statement["Action"]) or not any(
                    fnmatch.fnmatchcase(resource, granted) for granted in listed(statement["Resource"])):
                continue
            condition = statement.get("Condition")
            if condition is None:
                return True
            (operator, tests), = condition.items()
            assert operator == "ForAllValues:StringLike" and list(tests) == ["dynamodb:LeadingKeys"], condition
            if key is not None and any(fnmatch.fnmatchcase(key, pattern) for pattern in tests["dynamodb:LeadingKeys"]):
                return True
        return False
    return sorted((call for call in calls if not allowed(*call)), key=str)


@pytest.mark.parametrize("backend", ["dynamodb"])
def test_each_functions_policy_allows_the_calls_it_makes(store, site, client, make_event, clock):
    """The policies are written narrow by hand; this checks they are enough: each function's
    work, run under moto, makes only calls its policy in template.yaml allows."""
    with_the_stacks_delay(store, clock)  # reports read what waits in the journal
    calls = Calls(store)
    bot = {"User-Agent": "Googlebot/2.1 (+http://www.google.com/bot.html)", "X-API-Key": site.tracker_key}
    # Every kind of event, so every path of folding runs (goals, properties, links).
    site.goals = [{"id": "g1", "name": "Pricing", "kind": "page", "match": "/", "created_ms": 0}]
    store.update_site(site)
    events = [make_event(), make_event(type="custom", name="play", props={"video": "intro"}),
              make_event(type="conversion", name="Purchase", value=29),
              make_event(type="click", props={"href": "https://github.com/x"})]
    for headers, batch in (({"User-Agent": CHROME_UA, "X-API-Key": site.tracker_key}, events),
                           (bot, [make_event()])):
        client.post("/api/events", data=json.dumps({"events": batch}), headers=headers,
                    content_type="text/plain")
    for url in ("/", f"/sites/{site.site_id}", f"/sites/{site.site_id}/realtime", f"/sites/{site.site_id}/live",
                "/healthz", f"/api/realtime?site={site.site_id}", f"/api/stats?site={site.site_id}"):
        assert client.get(url).status_code in (200, 302), url
    web = calls.take()
    # The tracker's own door (its function URL): a page's events, the preflight, the script, health.
    door = create_app({"TESTING": True, "SECRET_KEY": "k", **TRACKER_SETTINGS}, store=store, clock=clock).test_client()
    posted = door.post("/api/events", data=json.dumps({"key": site.tracker_key, "events": [make_event(), make_event()]}),
                       content_type="text/plain", headers={"User-Agent": CHROME_UA, "Origin": "https://example.com"})
    assert posted.status_code == 202
    assert door.post("/api/events", data=json.dumps({"events": [make_event()]}),  # a bot's: counted as dropped
                     content_type="text/plain", headers=bot).status_code == 202
    assert door.options("/api/events", headers={"Origin": "https://example.com",
                                                 "Access-Control-Request-Method": "POST"}).status_code in (200, 204)
    with door.get("/tracker.js") as script:
        assert script.status_code == 200
    assert door.get("/healthz").status_code == 200
    tracker = calls.take()
    assert ("UpdateItem", "AggregatesTable") in {(action, table) for action, table, _, _ in tracker}  # its limits
    # An admin deletes another site, once its traffic is counted (it goes at the next purge).
    doomed = create_site(store, "Doomed", ["doomed.example"], clock.now_ms())
    record_batch(store, doomed, [make_event(url="https://doomed.example/")], Client("198.51.100.23", CHROME_UA),
                 clock.now_ms())
    web |= calls.take()
    records = stream_records(store)
    calls.take()  # reading the stream is Lambda's part
    assert aggregate_records(store, records) == NO_FAILURES  # its counters wait in the journal
    aggregator = calls.take()
    # A batch's counters wait in the journal; the every-minute schedule adds them.
    record_batch(store, site, [make_event(type="heartbeat")], Client("198.51.100.23", CHROME_UA), clock.now_ms())
    records = stream_records(store)
    calls.take()
    assert aggregate_records(store, records) == NO_FAILURES
    aggregator |= calls.take()
    assert store.apply_journals(clock.now_ms() + store.counter_delay_ms) > 0
    every_minute = calls.take()
    store.delete_site(doomed.site_id)
    web |= calls.take()
    assert store.erase_visitor(site.site_id, "visitor-1")["events"] > 0  # an admin, once it is counted
    web |= calls.take()
    assert store.purge(clock.now_ms() + 2 * 86_400_000)["events"] > 0
    retention = calls.take() | every_minute
    bulk = {(action, table) for action, table, _, _ in retention} & {("BatchWriteItem", "EventsTable"),
                                                                      ("BatchWriteItem", "AggregatesTable")}
    assert len(bulk) == 2  # the purge deleted the doomed site's traffic in bulk; the web function never does
    assert not {(action, table) for action, table, _, _ in web} & bulk
    assert {"PutItem", "UpdateItem"} <= {action for action, _, _, _ in aggregator}
    for function, made in (("WebFunction", web), ("TrackerFunction", tracker), ("AggregateFunction", aggregator),
                           ("RetentionFunction", retention)):
        assert _denied(function, made) == [], function


# Ingest the sample POST, aggregate what the stream holds then, read the fragment, run the
# schedule: each through the handlers of the built package, as Lambda would call them.
HANDLERS_SCRIPT = """
import importlib.util, json, os, sys, time
from pathlib import Path
from moto import mock_aws

events = Path(sys.argv[1])
spec = importlib.util.spec_from_file_location("dynamodb_stream", sys.argv[2])  # the tests' stream reader
dynamodb_stream = importlib.util.module_from_spec(spec)
spec.loader.exec_module(dynamodb_stream)
dynamodb_stream.serialise_stream_numbering()
def sample(name):
    return json.loads((events / name).read_text())

with mock_aws():
    import app
    import app.lambda_handlers as handlers
    from app.auth.links import token_hash
    from app.store import open_store
    from app.store.base import PublicLink, Site

    store = open_store("dynamodb://liveinsight-test")
    store.create_schema()
    import boto3  # the stack's session secret, which the web function reads at run time
    os.environ["LIVEINSIGHT_SECRET_ARN"] = boto3.client("secretsmanager").create_secret(
        Name="liveinsight-session", SecretString="sample-secret-key")["ARN"]
    now = int(time.time() * 1000)
    store.create_site(Site("sample", "Sample", "pk_sample_tracker_key", ["example.com"], "UTC", now))
    # The sample fragment GET opens the dashboard through this public link (no login cookie).
    store.create_public_link(PublicLink(token_hash("sample-public-link-token-0123456789"), "sample",
                                        "Sample", now, "sample-owner"))
    # Its owner wants an email at the day's first conversion (the sample POST sends one), through SES.
    from app.alerts import settings as alert_settings
    from app.store.base import Membership, User
    boto3.client("ses").verify_email_identity(EmailAddress=os.environ["LIVEINSIGHT_MAIL_FROM"])
    store.create_user(User("owner-1", "owner@example.com", "x", now))
    store.put_membership(Membership("sample", "owner-1", "owner", now))
    site = store.get_site("sample")
    alert_settings.add_goal_rule(store, site, "reached", "c:", "1", "", "", "", alert_settings.goal_choices(site, []))
    alert_settings.subscribe(store, site, "owner-1", True)
    spec = importlib.util.spec_from_file_location("fresh", events / "fresh.py")  # the schema refuses a stale sample
    fresh = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fresh)
    post = fresh.fresh_post(sample("api-post-events.json"), now)

    # The owner watches the realtime page: its socket connects with the ticket the web app signed.
    from app.live_sockets import ticket
    connect = sample("socket-connect.json")
    connect["queryStringParameters"]["ticket"] = ticket("sample-secret-key", "sample", "owner-1", "en")
    connected = handlers.live_socket(connect, None)

    started = time.perf_counter()
    posted = handlers.web(post, None)
    first_request_ms = (time.perf_counter() - started) * 1000
    out = {
        "app": app.__file__,
        "first_request_ms": first_request_ms,
        "post": [posted["statusCode"], json.loads(posted["body"])],
        "stream": handlers.stream({"Records": dynamodb_stream.stream_records(store)}, None),
        "stream_sample": handlers.stream(sample("stream-batch.json"), None),
    }
    from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends
    from moto.core import DEFAULT_ACCOUNT_ID
    from urllib.parse import unquote  # moto keeps the id as it was in the URL path
    pushed = b"".join(c.data for id, c in apigatewaymanagementapi_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].connections.items()
                      if unquote(id) == "sample-connection=")
    out["socket"] = [connected["statusCode"], pushed.decode()[:200],
                     handlers.live_socket(sample("socket-disconnect.json"), None)["statusCode"],
                     len(store.live_sockets("sample"))]
    fragment = handlers.web(sample("api-get-fragment.json"), None)
    out["fragment"] = [fragment["statusCode"], fragment["body"]]
    # Another visitor's events through the tracker function's URL (payload 2.0), the same app.
    tracker = handlers.web(fresh.fresh_post(sample("tracker-post-events.json"), now), None)
    out["tracker"] = [tracker["statusCode"], json.loads(tracker["body"]), {k.lower(): v for k, v in tracker["headers"].items()}.get("access-control-allow-origin")]
    out["tracker_events"] = len(store.recent_events("sample", 10))
    out["schedule"] = handlers.schedule(sample("schedule.json"), None)
    out["sweep"] = handlers.schedule(sample("schedule-sweep.json"), None)
    out["counters"] = handlers.schedule(sample("schedule-counters.json"), None)
    out["alerts"] = handlers.alerts(sample("schedule.json"), None)  # every minute: nothing new is due
    out["fired"] = [(a.title, a.deliveries) for a in store.list_alerts("sample")]
    out["sent"] = boto3.client("ses").get_send_quota()["SentLast24Hours"]
    # Modules found outside the package: the runtime's boto3, this script's moto, or a gap.
    out["outside"] = sorted({name.split(".")[0] for name, module in list(sys.modules.items())
                             if "site-packages" in (getattr(module, "__file__", None) or "")
                             and not module.__file__.startswith(os.environ["PYTHONPATH"])})
    print(json.dumps(out))
"""


@pytest.mark.sam
def test_built_handlers_serve_every_sample_event(built, tmp_path):
    assert {p.name for p in EVENTS.glob("*.json")} == {
        "api-post-events.json", "api-get-fragment.json", "stream-batch.json", "schedule.json", "schedule-sweep.json",
        "schedule-counters.json", "socket-connect.json", "socket-disconnect.json", "local-env.json", "tracker-post-events.json"}, \
        "a new sample event needs its place in this test"
    done = run(sys.executable, "-c", HANDLERS_SCRIPT, str(EVENTS), str(ROOT / "tests" / "dynamodb_stream.py"), cwd=tmp_path,
               env={**MOTO_ENV, "PYTHONPATH": str(built), "LIVEINSIGHT_STORE": "dynamodb://liveinsight-test",
                    "LIVEINSIGHT_MAIL_FROM": "alerts@liveinsight.example",
                    "LIVEINSIGHT_LIVE_SOCKET_URL": "wss://abc123.execute-api.us-east-1.amazonaws.com/prod",
                    "LIVEINSIGHT_RATE_LIMITS": "on", "LIVEINSIGHT_RATE_LIMIT_STORAGE": "store://",  # the web function's
                    "AWS_LAMBDA_FUNCTION_NAME": "liveinsight-web"})  # as on Lambda: the key must be set
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    print(f"\nfirst web request (cold app, moto): {out['first_request_ms']:.0f} ms")

    assert out["app"].startswith(str(built))
    status, body = out["post"]
    assert (status, body["data"]["accepted"], body["data"]["rejected"]) == (202, 5, [])
    assert out["stream"] == NO_FAILURES
    # The socket connected, the stream function pushed it the snapshot, and it disconnected.
    connected, pushed, disconnected, left = out["socket"]
    assert (connected, disconnected, left) == (200, 200, 0)
    assert pushed.startswith('<section id="w-current-visitors"')
    # The sample batch repeats the events just posted: already applied, so skipped.
    assert out["stream_sample"] == NO_FAILURES
    status, html = out["fragment"]
    assert status == 200 and html.lstrip().startswith('<section id="w-current-visitors"')
    assert 'data-testid="current-visitors">1<' in html
    status, body, allowed_origin = out["tracker"]
    assert (status, body["data"]["accepted"], allowed_origin) == (202, 2, "https://example.com")
    assert out["tracker_events"] == 5 + 2
    assert set(out["schedule"]["deleted"]) >= {"events", "sessions", "visitors", "counters"}
    assert list(out["sweep"]) == ["deleted"]  # every 5 minutes: the purge alone, no rollups or digests
    assert out["counters"] == {"counter_items": 0}  # every minute; with no delay each batch added its own
    # The stream function sent the goal alert its batch reached, through SES; the minute's run, nothing more.
    assert out["fired"] == [["First conversion of the day on Sample",
                             [{"channel": "email to owner@example.com", "ok": True, "detail": "sent", "attempts": 1}]]]
    assert out["sent"] == 1 and out["alerts"] == {"fired": []}

    # Nothing the handlers imported came from outside the package (the venv running the test).
    needed = _distributions_needed(_requirements(ROOT / "requirements-lambda.txt")) - NOT_PACKAGED
    owners = metadata.packages_distributions()
    gaps = {dist for module in out["outside"] for dist in owners.get(module, [])
            if canonicalize_name(dist) in needed}
    assert not gaps, f"the Lambda package lacks {sorted(gaps)}"


def test_api_gateways_own_errors_are_json_the_tracker_can_read():
    """API Gateway answers some requests itself (its throttle's 429, a failed function's 502):
    with CORS headers, the tracker (which sends without credentials) sees the status and the
    Retry-After and backs off as the app's 429 asks; without them it saw a network error."""
    responses = load_template()["Resources"]["Api"]["Properties"]["GatewayResponses"]
    throttled = responses["THROTTLED"]
    assert throttled["StatusCode"] == "429"
    assert throttled["ResponseParameters"]["Headers"] == {
        "Access-Control-Allow-Origin": "'*'", "Access-Control-Expose-Headers": "'Retry-After'", "Retry-After": "'2'"}
    for name in ("THROTTLED", "DEFAULT_4XX", "DEFAULT_5XX"):
        assert responses[name]["ResponseParameters"]["Headers"]["Access-Control-Allow-Origin"] == "'*'"
        body = responses[name]["ResponseTemplates"]["application/json"].replace("$context.error.messageString", '"x"')
        assert json.loads(body)["status"] == "error"


def test_the_session_secret_is_read_at_run_time_and_a_rotation_logs_nobody_out(monkeypatch):
    """The web function reads the stack's secret from Secrets Manager, not from its environment,
    and again every SECRET_REFRESH_S: after a rotation it signs with the new value and still
    opens what the previous one signed."""
    import moto

    from app import lambda_handlers

    for name, value in MOTO_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("LIVEINSIGHT_SECRET_KEY", raising=False)
    with moto.mock_aws():
        import boto3
        secrets = boto3.client("secretsmanager")
        arn = secrets.create_secret(Name="liveinsight-session", SecretString="first-secret")["ARN"]
        monkeypatch.setenv("LIVEINSIGHT_SECRET_ARN", arn)
        monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "liveinsight-web")  # as on Lambda: a key is required
        monkeypatch.setenv("LIVEINSIGHT_STORE", "dynamodb://unused")
        for cached in (lambda_handlers._session_secret, lambda_handlers._flask_app):
            cached.cache_clear()
        try:
            app = lambda_handlers._flask_app()
            assert (app.secret_key, app.config["SECRET_KEY_FALLBACKS"]) == ("first-secret", [])
            signed_before = app.session_interface.get_signing_serializer(app).dumps({"uid": "u1"})

            secrets.put_secret_value(SecretId=arn, SecretString="second-secret")  # a rotation
            secret = lambda_handlers._session_secret()
            secret.refresh(app)
            assert app.secret_key == "first-secret"  # read again only after SECRET_REFRESH_S
            secret.read_at -= lambda_handlers.SECRET_REFRESH_S
            secret.refresh(app)
            assert (app.secret_key, app.config["SECRET_KEY_FALLBACKS"]) == ("second-secret", ["first-secret"])
            serializer = app.session_interface.get_signing_serializer(app)
            assert serializer.loads(signed_before) == {"uid": "u1"}  # still logged in
            assert serializer.loads(serializer.dumps({"uid": "u2"})) == {"uid": "u2"}
        finally:
            for cached in (lambda_handlers._session_secret, lambda_handlers._flask_app):
                cached.cache_clear()

    web = load_template()["Resources"]["WebFunction"]["Properties"]
    assert web["Environment"]["Variables"]["LIVEINSIGHT_SECRET_KEY"] == ""  # never in its configuration
    assert web["Environment"]["Variables"]["LIVEINSIGHT_SECRET_ARN"] == "SessionSecret"
    granted = [s for s in web["Policies"][0]["Statement"] if s["Action"] == "secretsmanager:GetSecretValue"]
    assert [s["Resource"] for s in granted] == ["SessionSecret"]


def test_logs_are_kept_a_bounded_time_and_alarms_watch_what_users_see():
    """Each function logs into a group of the stack kept LogRetentionDays (Lambda's default
    groups keep everything forever, and cost for it); alarms watch the API's 5xx (the app's own
    500 and 503 included, which no function metric counts), its 4xx share (429s first), its
    p99 latency, and throttling on the tables that grow with traffic."""
    resources = load_template()["Resources"]
    functions = {name: r for name, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
    assert sorted(functions) == ["AggregateFunction", "AlertsFunction", "LiveSocketFunction", "RetentionFunction",
                                 "TrackerFunction", "WebFunction"]
    for name, function in functions.items():
        group = resources[function["Properties"]["LoggingConfig"]["LogGroup"]]
        assert group["Type"] == "AWS::Logs::LogGroup", name
        assert group["Properties"]["RetentionInDays"] == "LogRetentionDays", name

    def metric(alarm: str) -> tuple:
        properties = resources[alarm]["Properties"]
        return properties.get("Namespace"), properties.get("MetricName")
    assert metric("ApiServerErrorsAlarm") == ("AWS/ApiGateway", "5XXError")
    assert metric("ApiRefusalsAlarm") == ("AWS/ApiGateway", "4XXError")
    assert metric("ApiLatencyAlarm") == ("AWS/ApiGateway", "Latency")
    # The tracker's URL, outside API Gateway: its 5xx (the app's 503 included) and its throttling.
    assert metric("TrackerServerErrorsAlarm") == ("AWS/Lambda", "Url5xxCount")
    assert metric("TrackerThrottlesAlarm") == ("AWS/Lambda", "Throttles")
    assert resources["Api"]["Properties"]["Name"] == "AWS::StackName"  # the ApiName dimension
    watched = {(m["MetricStat"]["Metric"]["MetricName"], m["MetricStat"]["Metric"]["Dimensions"][0]["Value"])
               for m in resources["DynamoDBThrottlesAlarm"]["Properties"]["Metrics"] if "MetricStat" in m}
    # The tables that grow with traffic; the sites' and accounts' throttling shows as 5xx answers.
    tables = {name for name, r in resources.items() if r["Type"] == "AWS::DynamoDB::Table"}
    assert tables == {"SitesTable", "AccountsTable", "EventsTable", "AggregatesTable"}
    assert watched == {(kind, table) for kind in ("ReadThrottleEvents", "WriteThrottleEvents")
                       for table in ("EventsTable", "AggregatesTable")}


def test_fresh_sample_events_are_within_the_last_minute_and_keep_their_spacing():
    """`python3 events/fresh.py` gives the sample POST with today's timestamps (sam local)."""
    done = run(sys.executable, str(EVENTS / "fresh.py"), cwd=ROOT)
    now = time.time() * 1000
    stamps = [e["timestamp"] for e in json.loads(json.loads(done.stdout)["body"])["events"]]
    committed = [e["timestamp"] for e in json.loads(json.loads((EVENTS / "api-post-events.json").read_text())["body"])["events"]]
    assert now - 60_000 < max(stamps) < now
    assert [b - a for a, b in zip(stamps, stamps[1:])] == [b - a for a, b in zip(committed, committed[1:])]


def test_the_spend_alarm_prices_an_hours_requests():
    """One public tracker key can run up the bill: an alarm prices each hour's DynamoDB request
    units and API requests (us-east-1 on-demand) against SpendAlarmDollarsPerHour."""
    alarm = load_template()["Resources"]["SpendAlarm"]["Properties"]
    assert alarm["Threshold"] == "SpendAlarmDollarsPerHour"
    metrics = {m["Id"]: m["MetricStat"]["Metric"] for m in alarm["Metrics"] if "MetricStat" in m}
    tables = {m["Dimensions"][0]["Value"] for m in metrics.values() if m["Namespace"] == "AWS/DynamoDB"}
    assert tables == {"EventsTable", "AggregatesTable"}  # the two that grow with the public tracker's traffic
    expression, = [m["Expression"] for m in alarm["Metrics"] if "Expression" in m]
    # A million write units, two million read units and a million requests in the hour, at
    # the prices tests/test_aws_cost.py counts: $0.625 + $0.25 + $3.50.
    from tests.test_aws_cost import PRICES
    assert PRICES["write unit"] == 0.625e-6 and PRICES["read unit"] == 0.125e-6
    sums = {name: 0.0 for name in metrics}
    sums.update(aw=1_000_000, ar=2_000_000, requests=1_000_000)
    plain = re.sub(r"FILL\((\w+), 0\)", r"\1", expression)
    assert abs(eval(plain, {}, sums) - 4.375) < 1e-9  # noqa: S307 - the template's own arithmetic


@pytest.mark.parametrize("backend", ["dynamodb"])
def test_the_alerts_policies_allow_the_calls_alerts_make(store, make_event, clock, admin):
    """What the stream function does after a batch (goal alerts) and the every-minute alerts
    function (traffic and silence rules), run under moto, against their policies."""
    with_the_stacks_delay(store, clock)  # their reads of counters read what waits in the journal
    from app.alerts import settings as alert_settings
    from app.alerts.evaluate import deliver_all, fold_alerts, minute_alerts
    from app.alerts.notify import Notifier
    from app.store.base import Site
    now = clock.now_ms()
    site = Site("old", "Old", "pk_old", ["example.com"], "UTC", now - 60 * 86_400_000)  # it has a baseline
    store.create_site(site)
    choices = alert_settings.goal_choices(site, [])
    alert_settings.add_goal_rule(store, site, "reached", "c:", "1", "", "", "", choices)
    alert_settings.add_goal_rule(store, site, "silence", "", "", "1", "0", "24", choices)
    alert_settings.set_traffic(store, site, True, "normal", "1", "1")
    alert_settings.subscribe(store, site, admin.user_id, True)
    alert_settings.subscribe_report(store, site, admin.user_id, "weekly", True)  # last week's is due
    notifier = Notifier(None, "https://stats.example", False)  # email through SES: not DynamoDB's
    events = [make_event(session_id=f"s{i}", user_id=f"v{i}", url=f"https://example.com/p{i}") for i in range(30)]
    record_batch(store, site, events + [make_event(type="conversion", name="Purchase")],
                 Client("198.51.100.23", CHROME_UA), now)
    calls = Calls(store)
    assert aggregate_records(store, stream_records(store)) == NO_FAILURES
    calls.take()  # the fold: the other test
    fired = fold_alerts(store, [site.site_id], now)
    deliver_all(store, notifier, fired)
    stream = calls.take()
    assert [alert.kind for _, alert in fired] == ["goal"]
    fired = minute_alerts(store, now + 5 * 60_000) + minute_alerts(store, now + 90 * 60_000)  # a spike, then silence
    deliver_all(store, notifier, fired)
    every_minute = calls.take()
    assert sorted(alert.kind for _, alert in fired) == ["report", "silence", "spike"]
    assert {"PutItem", "UpdateItem", "GetItem"} <= {action for action, table, _, _ in stream if table == "AccountsTable"}
    assert ("Query", "AggregatesTable", None) in {call[:3] for call in every_minute}  # counters, live ones too
    for function, made in (("AggregateFunction", stream), ("AlertsFunction", every_minute)):
        assert _denied(function, made) == [], function


@pytest.mark.parametrize("backend", ["dynamodb"])
def test_the_live_push_policies_allow_the_calls_pushing_makes(store, site, admin, make_event, monkeypatch):
    """The socket function's $connect and $disconnect, and the stream function's push (the
    sockets, the claim, the snapshot's reads, forgetting a gone socket), against their policies;
    and the WebSocket API's routes lead to the socket function, whose pushes the stream's may post."""
    from app import lambda_handlers, live_sockets
    from app.store.base import LiveSocket
    import boto3
    arn = boto3.client("secretsmanager").create_secret(Name="session", SecretString="key")["ARN"]
    monkeypatch.setattr(lambda_handlers, "_store", lambda: store)
    monkeypatch.setattr(lambda_handlers, "_session_secret", lambda: lambda_handlers.SessionSecret(arn))
    lambda_handlers._render_app.cache_clear()
    now = int(time.time() * 1000)
    record_batch(store, site, [make_event(timestamp=now)], Client("198.51.100.23", CHROME_UA), now)
    assert aggregate_records(store, stream_records(store)) == NO_FAILURES
    from app.auth import links
    _, token = links.create_link(store, site.site_id, "TV", admin.user_id, now)
    calls = Calls(store)
    context = {"routeKey": "$connect", "connectionId": "c1"}
    ticket = live_sockets.ticket("key", site.site_id, admin.user_id, "ko")
    assert lambda_handlers.live_socket({"requestContext": context, "queryStringParameters": {"ticket": ticket}},
                                       None)["statusCode"] == 200
    by_link = live_sockets.ticket("key", site.site_id, live_sockets.LINK_VIEWER + links.token_hash(token), "en")
    assert lambda_handlers.live_socket({"requestContext": {**context, "connectionId": "c3"},
                                        "queryStringParameters": {"ticket": by_link}}, None)["statusCode"] == 200
    store.add_live_socket(LiveSocket("c2", site.site_id, admin.user_id, now, "ko"))  # rendered in Korean too
    assert lambda_handlers.live_socket({"requestContext": {**context, "routeKey": "$disconnect"}}, None)["statusCode"] == 200
    socket = calls.take()
    done = live_sockets.push(store, [site.site_id], lambda_handlers._render_snapshot, lambda ids, data: ids,
                             lambda ids: [], now)
    assert done == {"sites": 1, "sent": 2, "closed": 0, "gone": 2}
    push = calls.take()
    lambda_handlers._render_app.cache_clear()
    assert {"BatchWriteItem", "GetItem"} <= {action for action, table, _, _ in socket if table == "AccountsTable"}
    assert ("Query", "AggregatesTable", None) in {call[:3] for call in push}  # the live widgets read counters
    for function, made in (("LiveSocketFunction", socket), ("AggregateFunction", push)):
        assert _denied(function, made) == [], function

    resources = load_template()["Resources"]
    routes = {r["Properties"]["RouteKey"]: r["Properties"]["Target"] for r in resources.values()
              if r["Type"] == "AWS::ApiGatewayV2::Route"}
    assert routes == {"$connect": "integrations/${LiveSocketIntegration}",
                      "$disconnect": "integrations/${LiveSocketIntegration}"}
    assert "${LiveSocketFunction.Arn}" in resources["LiveSocketIntegration"]["Properties"]["IntegrationUri"]
    posting = [s for s in resources["AggregateFunction"]["Properties"]["Policies"][0]["Statement"]
               if s["Action"] == "execute-api:ManageConnections"]
    assert len(posting) == 1 and "${LiveSocketApi}/${Stage}/*/@connections/*" in posting[0]["Resource"]


@pytest.mark.parametrize("backend", ["dynamodb"])
def test_the_web_function_counts_rate_limits_in_dynamodb_within_its_policy(store, site, make_event, clock):
    """As the stack configures it, the web function's limits count in the aggregates table (so
    they hold across containers: tests/test_rate_limit_windows.py), which its policy allows."""
    from app import create_app
    env = load_template()["Resources"]["WebFunction"]["Properties"]["Environment"]["Variables"]
    assert (env["LIVEINSIGHT_RATE_LIMITS"], env["LIVEINSIGHT_RATE_LIMIT_STORAGE"]) == ("on", "store://")
    client = create_app({"TESTING": True, "SECRET_KEY": "k", "RATE_LIMITS": True, "RATE_LIMIT_STORAGE": "store://"},
                        store=store, clock=clock).test_client()
    calls = Calls(store)
    assert client.post("/api/events", data=json.dumps({"key": site.tracker_key, "events": [make_event()]}),
                       content_type="text/plain", headers={"User-Agent": CHROME_UA}).status_code == 202
    made = calls.take()
    assert any(action == "UpdateItem" and (key or "").startswith("RATE#api.") for action, _, _, key in made)
    assert _denied("WebFunction", made) == []


def test_api_access_logs_when_asked_name_no_address_nor_path_and_are_kept_a_bounded_time():
    resources = load_template()["Resources"]
    condition, setting, _ = resources["Api"]["Properties"]["AccessLogSetting"]["Fn::If"]
    assert condition == "LogsApiAccess" and load_template()["Parameters"]["ApiAccessLogs"]["Default"] == "off"
    fields = json.loads(setting["Format"])
    assert {"status", "latencyMs", "error", "requestId"} <= set(fields)
    assert not [v for v in fields.values() if any(part in v for part in ("identity", "$context.path", "domainName"))]
    group = resources["ApiAccessLogGroup"]
    assert group["Condition"] == "LogsApiAccess" and group["Properties"]["RetentionInDays"] == "LogRetentionDays"
