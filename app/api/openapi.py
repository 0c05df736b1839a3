"""The OpenAPI document of the JSON API, generated from its marshmallow schemas."""
from __future__ import annotations

from functools import lru_cache

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from .schemas import (
    ErrorSchema, EventBatchSchema, FunnelsAnswerSchema, IngestAnswerSchema, StatsAnswerSchema, StatsQuerySchema,
)

ERRORS = {str(code): {"description": text, "content": {"application/json": {"schema": "Error"}}}
          for code, text in ((400, "Bad request"), (401, "Bad or missing key"),
                             (403, "Origin not allowed, or a key of another site"), (404, "Unknown site"),
                             (413, "Body or batch too large"),
                             (429, "Too many requests: retry after the Retry-After header's seconds"),
                             (503, "Storage unavailable, retry"))}
READ_SECURITY = [{"secretKey": []}, {"secretKeyHeader": []}, {"session": []}]
SITE_PARAMETER = {"in": "query", "name": "site", "schema": {"type": "string"},
                  "description": "The site id (optional with a secret key: the key's site)"}


@lru_cache(maxsize=1)
def openapi_document() -> dict:
    spec = APISpec(title="LiveInsight API", version="1.0.0", openapi_version="3.0.3",
                   plugins=[MarshmallowPlugin()],
                   info={"description": "Real-time web analytics: ingestion and statistics."})
    spec.components.schema("Error", schema=ErrorSchema)
    spec.components.schema("EventBatch", schema=EventBatchSchema)
    spec.components.schema("IngestAnswer", schema=IngestAnswerSchema)
    spec.components.schema("StatsAnswer", schema=StatsAnswerSchema)
    spec.components.schema("FunnelsAnswer", schema=FunnelsAnswerSchema)
    spec.components.security_scheme("trackerKey", {"type": "apiKey", "in": "header", "name": "X-API-Key"})
    spec.components.security_scheme("secretKey", {"type": "http", "scheme": "bearer",
                                                  "description": "A secret API key (sk_...) of the site"})
    spec.components.security_scheme("secretKeyHeader", {"type": "apiKey", "in": "header", "name": "X-API-Key",
                                                        "description": "The same secret key, in X-API-Key"})
    spec.components.security_scheme("session", {"type": "apiKey", "in": "cookie", "name": "liveinsight_session",
                                                "description": "A dashboard login"})
    spec.path(path="/api/events", operations={"post": {
        "summary": "Send a batch of tracker events",
        "security": [{"trackerKey": []}],
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": "EventBatch"},
            "text/plain": {"schema": "EventBatch"}}},
        "responses": {"202": {"description": "Accepted (per-event rejections inside)",
                              "content": {"application/json": {"schema": "IngestAnswer"}}},
                      **{k: v for k, v in ERRORS.items() if k != "404"}}}})
    spec.path(path="/api/stats", operations={"get": {
        "summary": "Historical statistics: top metrics, chart and breakdowns of a period",
        "description": "With any of funnel, paths, page_flow or cohorts, the answer holds only those reports "
                       "(data.funnel, data.paths, data.page_flow, data.cohorts): they are reports of their own.",
        "security": READ_SECURITY,
        "parameters": [{"in": "query", "schema": StatsQuerySchema}],
        "responses": {"200": {"description": "The report",
                              "content": {"application/json": {"schema": "StatsAnswer"}}},
                      **{k: ERRORS[k] for k in ("400", "401", "403", "429")},
                      "404": {**ERRORS["404"], "description": "Unknown site or funnel"},
                      "503": {**ERRORS["503"], "description": "Storage unavailable, or a funnel, paths or page "
                              "flow still being prepared from its history (the message says how far): retry "
                              "after the Retry-After header's seconds"}}}})
    spec.path(path="/api/funnels", operations={"get": {
        "summary": "The site's funnels, for ?funnel=<id> of /api/stats",
        "security": READ_SECURITY,
        "parameters": [SITE_PARAMETER],
        "responses": {"200": {"description": "The funnels and their steps",
                              "content": {"application/json": {"schema": "FunnelsAnswer"}}},
                      **{k: ERRORS[k] for k in ("400", "401", "403", "404", "429", "503")}}}})
    spec.path(path="/api/realtime", operations={"get": {
        "summary": "What the live dashboard shows",
        "security": READ_SECURITY,
        "parameters": [SITE_PARAMETER],
        "responses": {"200": {"description": "Realtime figures"},
                      **{k: ERRORS[k] for k in ("400", "401", "403", "404", "429", "503")}}}})
    return spec.to_dict()
