"""The JSON API: POST /api/events (ingestion), GET /api/realtime, GET /api/stats and GET /api/funnels."""
from __future__ import annotations

import json
from dataclasses import asdict

from marshmallow import ValidationError

from flask import Blueprint, current_app, g, jsonify, request
from werkzeug.exceptions import BadRequest, Forbidden, NotFound, RequestEntityTooLarge, Unauthorized

from app.analytics import cohorts, funnels, goal_reports, journeys, stats
from app.analytics.periods import local_day_number
from app.analytics.realtime import realtime
from app.api.schemas import parse_report_query
from app.auth import api_keys
from app.auth.access import current_user
from app.auth.sites import origin_allowed
from app.auth.users import role_on
from app.context import get_store, now_ms, report_budget
from app.ingest.enrich import Client
from app.ingest.pipeline import record_batch
from app.ingest.schema import describe
from app.limits import client_id, rate_limited

from .openapi import openapi_document

bp = Blueprint("api", __name__, url_prefix="/api")

PREFLIGHT_MAX_AGE_S = 86_400


def _ingest_body() -> tuple[list, str | None]:
    """The events and the key field of this ingestion request, parsed once (the rate limit's
    key needs the key before the view runs)."""
    if "ingest_body" not in g:
        g.ingest_body = _parse_body()
    return g.ingest_body


def _tracker_key() -> str:
    return request.headers.get("X-API-Key") or _ingest_body()[1] or ""


def _ingest_limit_key() -> str:
    """Ingestion is limited per tracker key and client."""
    return f"{_tracker_key()}|{client_id()}"


def _parse_body() -> tuple[list, str | None]:
    """The events and the key field of an ingestion body (JSON sent as JSON or text/plain)."""
    raw = request.get_data(cache=False)  # raises 413 past MAX_CONTENT_LENGTH (a Content-Length)
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is None and limit and len(raw) >= limit:
        # A chunked body is read up to the limit and no further: it reached it, so it is too large.
        raise RequestEntityTooLarge(f"body over {limit} bytes")
    if not raw:
        raise BadRequest("empty body: send {\"events\": [...]} as JSON")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from exc
    except RecursionError as exc:  # e.g. 50,000 nested [
        raise BadRequest("body is nested too deeply") from exc
    if isinstance(body, list):
        return body, None
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object or an array of events")
    key = body.get("key")
    if "events" in body:
        events = body["events"]
        if not isinstance(events, list):
            raise BadRequest("'events' must be an array")
        return events, key if isinstance(key, str) else None
    event = {k: v for k, v in body.items() if k != "key"}
    return [event], key if isinstance(key, str) else None


@bp.after_request
def _let_the_tracker_read_answers(response):
    """Let the page that sent events read every answer, errors included (503 and 429 too),
    so the tracker can tell a permanent refusal (4xx) from a failure worth retrying, and
    honour Retry-After. Nothing is stored for a refused origin: this only exposes the error."""
    origin = request.headers.get("Origin")
    if origin and request.endpoint == "api.collect_events":
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = "Retry-After, Li-Carry"
        response.headers["Vary"] = "Origin"
    return response


@bp.route("/events", methods=["POST"], provide_automatic_options=False)
@rate_limited("RATE_LIMIT_INGEST", _ingest_limit_key)
@rate_limited("RATE_LIMIT_SITE", _tracker_key, spread=8)  # a key's every client: others keep their share
def collect_events():
    events, _ = _ingest_body()
    key = _tracker_key()
    if not key:
        raise Unauthorized("missing tracker key: send it in X-API-Key or a 'key' field")
    store = get_store()
    site = current_app.extensions["liveinsight.sites_by_key"].get(store, key, now_ms())
    if site is None:
        raise Unauthorized("unknown tracker key")
    # A browser names the page's origin; "null" (a sandboxed iframe, a data: or file: page) could
    # be any site's page posting with this site's public key, so it is refused too.
    origin = request.headers.get("Origin")
    if origin and not origin_allowed(origin, site.domains):
        raise Forbidden(f"origin {origin} is not one of this site's domains")
    if not events:
        raise BadRequest("no events in the batch")
    if len(events) > current_app.config["MAX_BATCH_EVENTS"]:
        raise RequestEntityTooLarge(f"at most {current_app.config['MAX_BATCH_EVENTS']} events per request")
    client = Client(ip=request.remote_addr or "", user_agent=request.user_agent.string or "",
                    dnt=request.headers.get("DNT") == "1", gpc=request.headers.get("Sec-GPC") == "1")
    result = record_batch(store, site, events, client, now_ms())
    data = asdict(result)
    carry = data.pop("carry") or ""  # (a site without funnels across visits: "")
    response = jsonify(status="success", data=data)
    response.headers["Li-Carry"] = carry  # for the tracker to keep: a header takes it the least code to read
    return response, 202


@bp.route("/events", methods=["OPTIONS"])
def preflight_events():
    """CORS preflight: the key is not sent on a preflight, so allow an origin that is a
    domain of some site; the POST itself then checks the key's own domains."""
    origin = request.headers.get("Origin", "")
    if not origin or not any(origin_allowed(origin, s.domains) for s in get_store().list_sites()):
        response = jsonify(status="error", message="origin not allowed")
        response.status_code = 403
        return response
    response = current_app.response_class(status=204)
    response.headers.update({
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": "POST",
        "Access-Control-Allow-Headers": "Content-Type, X-API-Key",
        "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S),
        "Vary": "Origin",
    })
    return response


def _secret_key() -> str | None:
    """A secret API key sent as `Authorization: Bearer sk_...` or `X-API-Key: sk_...`."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        return token.strip()
    return request.headers.get("X-API-Key")


def _stats_limit_key() -> str:
    """The stats API is limited per key, or per logged-in user, or per client."""
    secret = _secret_key()
    if secret:
        return "key|" + api_keys.key_hash(secret)
    user = current_user()
    return f"user|{user.user_id}" if user else f"client|{client_id()}"


def _readable_site():
    """The site a stats request is for, if the caller may read it: with a secret API key,
    the key's site (`?site=` may name it); else a logged-in user's site with any role."""
    store, site_id = get_store(), request.args.get("site", "")
    secret = _secret_key()
    if secret:
        key = api_keys.authenticate(store, secret, now_ms())
        if key is None:
            raise Unauthorized("unknown, revoked or expired API key (the stats API takes a secret key, "
                               "sk_..., made under the site's Settings; not the tracker key)")
        if site_id and site_id != key.site_id:
            raise Forbidden("this API key is for another site")
        site_id = key.site_id
    else:
        user = current_user()
        if user is None:
            raise Unauthorized("send a secret API key (Authorization: Bearer sk_...) or log in")
        if not site_id:
            raise BadRequest("missing ?site=ID")
        if role_on(store, user, site_id) is None:
            raise NotFound(f"no site {site_id!r}")
    site = store.get_site(site_id)
    if site is None:
        raise NotFound(f"no site {site_id!r}")
    return site


@bp.get("/realtime")
@rate_limited("RATE_LIMIT_API", _stats_limit_key)
def realtime_json():
    return jsonify(status="success", data=realtime(get_store(), _readable_site(), now_ms()))


@bp.get("/stats")
@rate_limited("RATE_LIMIT_API", _stats_limit_key)
def stats_json():
    site = _readable_site()
    try:
        query = parse_report_query(request.args.to_dict(), site, now_ms(), journeys=True)
    except ValidationError as error:
        raise BadRequest(describe(error)) from error
    store = get_store()
    if query.journeys:
        return jsonify(status="success", data=_journey_reports(store, site, query))
    with store.one_moment():  # as the dashboard's widgets: a partition's range read once for all
        data = stats.report(store, site, query.period, query.filters,
                            tuple(b for b in query.breakdowns if b in stats.BREAKDOWNS), query.limit, now_ms(),
                            query.metric)
        data["breakdowns"].update({b: goal_reports.table(store, site, query.period, b, query.filters, query.limit,
                                                         query.event)
                                   for b in query.breakdowns if b in goal_reports.TABLES})
    return jsonify(status="success", data=data)


def _journey_reports(store, site, query) -> dict:
    """The funnel, paths, page flow and cohort reports asked for, and nothing else: each is a
    report of its own (the bench times them alone). One whose history has no digests yet may
    stop at REPORT_BUDGET_S: 503 with Retry-After (summaries.Preparing), what it made kept."""
    today = local_day_number(site.timezone, now_ms())
    filters, data = query.filters.values, {}
    try:
        with report_budget():
            if query.funnel:
                data["funnel"] = funnels.funnel_report(store, site, funnels.get_funnel(site, query.funnel),
                                                       query.period, today, filters, query.funnel_breakdown)
            if query.paths:
                data["paths"] = journeys.top_paths(store, site, query.period, today, query.paths, filters,
                                                   query.limit)
            if query.page_flow:
                data["page_flow"] = journeys.next_and_previous(store, site, query.period, today, query.page_flow,
                                                               filters, query.limit)
            if query.cohorts:
                data["cohorts"] = cohorts.cohort_table(store, site, today, query.cohorts, query.cohort_periods,
                                                       filters)
    except funnels.NoSuchFunnel as error:
        raise NotFound(str(error)) from error
    except (funnels.FunnelError, journeys.JourneyError, cohorts.CohortError) as error:
        raise BadRequest(str(error)) from error
    return data




@bp.get("/funnels")
@rate_limited("RATE_LIMIT_API", _stats_limit_key)
def funnels_json():
    site = _readable_site()
    return jsonify(status="success", data={"funnels": [
        {**funnels.funnel_ref(site, funnel),
         "steps": [{"kind": step["kind"], "match": step["match"], "label": funnels.step_label(site, step)}
                   for step in funnel.steps]}
        for funnel in funnels.funnels_of(site)]})


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(openapi_document())
