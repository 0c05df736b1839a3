"""Marshmallow schemas of the JSON API: what requests carry and what answers hold.

The stats query schema is shared by GET /api/stats and the reports pages, so a bookmarked
dashboard URL and an API call read the same parameters; the OpenAPI document at
/api/openapi.json is generated from these schemas.
"""
from __future__ import annotations

from dataclasses import dataclass

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from app.analytics.periods import INTERVALS, PERIODS, Period, PeriodError, parse_period
from app.analytics.goal_reports import TABLES
from app.analytics.stats import (BREAKDOWNS, CHART_METRICS, DEFAULT_LIMIT, FILTERS, MAX_LIMIT, VISIT_METRICS, Filters,
                                 StatsError)
from app.ingest.schema import EventSchema
from app.store.base import Site


ALL_BREAKDOWNS = BREAKDOWNS + TABLES


@dataclass(frozen=True)
class ReportQuery:
    period: Period
    filters: Filters
    breakdowns: tuple[str, ...]
    limit: int
    event: str | None = None  # the custom event whose properties the "props" breakdown lists
    metric: str | None = None  # what the chart is asked to draw (stats.CHART_METRICS)

    def args(self, **changes) -> dict:
        """The query string of this report (with changes: None removes a filter)."""
        args = {"period": self.period.name}
        if self.period.name == "custom":
            args.update({"from": self.period.first.isoformat(), "to": self.period.last.isoformat()})
        args.update(self.filters.values)
        if self.metric:
            args["metric"] = self.metric
        args.update(changes)
        return {k: v for k, v in args.items() if v is not None}


_FILTER_FIELDS = {name: fields.String(load_default=None, metadata={
    "description": f"Filter: only data whose {name} is this value."}) for name in FILTERS}
_FILTER_FIELDS["goal"] = fields.String(load_default=None, metadata={
    "description": "Filter: only visits that reached this goal, by its key (the goals breakdown's `key`): "
                   "g:<id> a defined goal, c:<name> a conversion name, c: any conversion, e:<name> a custom event."})


class StatsQuerySchema(Schema.from_dict(_FILTER_FIELDS)):  # type: ignore[misc]
    class Meta:
        unknown = EXCLUDE

    site = fields.String(metadata={"description": "The site id (optional with a secret key: the key's site)."})
    period = fields.String(load_default="30d", validate=validate.OneOf(PERIODS),
                           metadata={"description": "A named period, in the site's time zone."})
    from_ = fields.Date(data_key="from", load_default=None,
                        metadata={"description": "First day (YYYY-MM-DD) of a custom period."})
    to = fields.Date(load_default=None, metadata={"description": "Last day of a custom period."})
    breakdown = fields.String(load_default="", metadata={
        "description": f"Comma-separated breakdowns to include: {', '.join(ALL_BREAKDOWNS)}. goals: each goal "
                       "and conversion name (visitors, visits, conversions, conversion_rate, value, "
                       "average_value, change); events: custom events; props: the properties of `event`; "
                       "outbound, outbound_url, downloads, not_found: link clicks and missing pages."})
    event = fields.String(load_default=None, validate=validate.Length(min=1, max=128), metadata={
        "description": "The custom event whose properties the props breakdown lists."})
    metric = fields.String(load_default=None, validate=validate.OneOf(CHART_METRICS), metadata={
        "description": f"What the chart (timeseries) is asked to draw: {', '.join(CHART_METRICS)}. Visitors and "
                       f"page views are always there (conversions with a goal filter); a metric of visits is "
                       f"added, with its previous period."})
    limit = fields.Integer(load_default=DEFAULT_LIMIT, validate=validate.Range(1, MAX_LIMIT),
                           metadata={"description": "Rows per breakdown."})


_stats_query = StatsQuerySchema()


def parse_report_query(args: dict, site: Site, now_ms: int, default_breakdowns=()) -> ReportQuery:
    """A ReportQuery from request arguments; raises ValidationError with a clear message."""
    data = _stats_query.load({**args, "site": site.site_id})
    try:
        period = parse_period(data["period"], site.timezone, now_ms,
                              data["from_"] and data["from_"].isoformat(),
                              data["to"] and data["to"].isoformat())
    except PeriodError as error:
        raise ValidationError({"period": [str(error)]}) from error
    breakdowns = tuple(b for b in data["breakdown"].split(",") if b) or tuple(default_breakdowns)
    unknown = [b for b in breakdowns if b not in ALL_BREAKDOWNS]
    if unknown:
        raise ValidationError({"breakdown": [f"unknown breakdown {', '.join(unknown)}: "
                                             f"use {', '.join(ALL_BREAKDOWNS)}"]})
    if "props" in breakdowns and not data["event"]:
        raise ValidationError({"event": ["the props breakdown needs event=<a custom event's name>"]})
    try:
        filters = Filters.parse({k: data[k] for k in FILTERS if data.get(k) is not None})
    except StatsError as error:
        raise ValidationError({"filters": [str(error)]}) from error
    return ReportQuery(period, filters, breakdowns, data["limit"], data["event"], data["metric"])


# -- answers, for the OpenAPI document
class ErrorSchema(Schema):
    status = fields.Constant("error")
    message = fields.String()


class IngestResultSchema(Schema):
    accepted = fields.Integer(metadata={"description": "New events stored."})
    duplicates = fields.Integer(metadata={"description": "Events already stored (retries)."})
    dropped = fields.Dict(keys=fields.String(), values=fields.Integer(),
                          metadata={"description": "Events deliberately not stored, by reason: bot, "
                                                   "spam (referrer spam), gpc or dnt (privacy signals "
                                                   "the site honours)."})
    rejected = fields.List(fields.Dict(), metadata={"description": "[{index, error}] of invalid events."})


class IngestAnswerSchema(Schema):
    status = fields.Constant("success")
    data = fields.Nested(IngestResultSchema)


class EventBatchSchema(Schema):
    key = fields.String(metadata={"description": "The site's tracker key (or send X-API-Key)."})
    events = fields.List(fields.Nested(EventSchema), required=True)


class MetricSchema(Schema):
    value = fields.Float(allow_none=True, metadata={"description": "null when not computed: see `unavailable`."})
    previous = fields.Float(allow_none=True)
    change = fields.Float(allow_none=True, metadata={"description": "Percent change; null without a base."})


class SummarySchema(Schema):
    metrics = fields.Dict(keys=fields.String(), values=fields.Nested(MetricSchema), metadata={
        "description": "visitors, visits, pageviews, views_per_visit, bounce_rate, visit_duration_s, "
                       "conversion_rate, conversions, conversion_value; with a page filter also time_on_page_s, "
                       "and visits are the visits that viewed the page."})
    visitors_approximate = fields.Boolean(metadata={
        "description": "Visitors are the sum of daily visitors (filters over several days)."})
    unavailable = fields.Dict(keys=fields.String(), values=fields.String(), metadata={
        "description": "Metric name -> a sentence saying why its value is null under these filters "
                       "(with a page filter: bounce rate, visit duration, conversions; with a page and other "
                       "filters: visitors too). Empty when every metric is computed."})


# With metric=<one of VISIT_METRICS>, the chart has its series, the previous period's, and why it is missing.
_VISIT_SERIES = {field: kind for name in VISIT_METRICS for field, kind in (
    (name, fields.List(fields.Float(allow_none=True), allow_none=True, metadata={
        "description": f"With metric={name}: per bucket (a rate is null in a bucket without visits); null "
                       f"when not computed under these filters ({name}_unavailable says why)."})),
    (f"previous_{name}", fields.List(fields.Float(allow_none=True), allow_none=True)),
    (f"{name}_unavailable", fields.String(allow_none=True)))}


class TimeseriesSchema(Schema.from_dict(_VISIT_SERIES)):  # type: ignore[misc]
    interval = fields.String(validate=validate.OneOf(INTERVALS), metadata={
        "description": "hour for one day (day with filters: one point), day up to 62 days, week (from Monday) "
                       "up to 190 days, month beyond; the first and last buckets are clipped to the period."})
    labels = fields.List(fields.String(), metadata={
        "description": "Bucket starts in the site's time zone: 2026-12-02T14:00 for hours, 2026-12-02 otherwise."})
    visitors = fields.List(fields.Integer(), allow_none=True, metadata={
        "description": "Visitors per bucket, unique over its days (unless visitors_summed_daily); null when "
                       "not counted under these filters (see visitors_unavailable)."})
    visitors_unavailable = fields.String(allow_none=True, metadata={
        "description": "Why visitors is null, as a sentence; null when they are counted."})
    visitors_summed_daily = fields.Boolean(metadata={
        "description": "Visitors of a week or month bucket are the sum of its days' visitors (filters on "
                       "session dimensions): a visitor who came on two days counts twice."})
    pageviews = fields.List(fields.Integer())
    previous_visitors = fields.List(fields.Integer(allow_none=True), allow_none=True, metadata={
        "description": "The previous period cut in the same interval, bucket by bucket; null past its end."})
    previous_pageviews = fields.List(fields.Integer(allow_none=True))
    current = fields.Integer(allow_none=True, metadata={
        "description": "Index of the bucket holding now (incomplete); null when the period is over."})
    conversions = fields.List(fields.Integer(), metadata={"description": "With a goal filter: its completions."})
    previous_conversions = fields.List(fields.Integer(allow_none=True))


class StatsDataSchema(Schema):
    site = fields.String()
    period = fields.Dict(metadata={"description": "name, from, to, previous_from, previous_to, timezone"})
    filters = fields.Dict(keys=fields.String(), values=fields.String())
    summary = fields.Nested(SummarySchema, metadata={"description": "Top metrics with the previous period's."})
    timeseries = fields.Nested(TimeseriesSchema)
    breakdowns = fields.Dict(metadata={"description": "Each breakdown asked for: rows, total_rows, "
                                                      "visitors_approximate, unavailable."})
    filtered = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={
        "description": "Events not counted, by reason: bot, spam, gpc, dnt."})


class StatsAnswerSchema(Schema):
    status = fields.Constant("success")
    data = fields.Nested(StatsDataSchema)
