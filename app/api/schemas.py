"""Marshmallow schemas of the JSON API: what requests carry and what answers hold.

The report query schema is shared by GET /api/stats and the reports pages, so a bookmarked
dashboard URL and an API call read the same parameters; GET /api/stats adds its journey
reports (StatsQuerySchema). The OpenAPI document at /api/openapi.json is generated from
these schemas.
"""
from __future__ import annotations

from dataclasses import dataclass

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from app.analytics.cohorts import COHORT_PERIODS, MAX_PERIODS
from app.analytics.funnels import FUNNEL_DIMENSIONS, STEP_KINDS
from app.analytics.goal_reports import TABLES
from app.analytics.journeys import ENTRANCE, EXIT, MAX_DAY_PATHS, MAX_PATH_PAGES
from app.analytics.periods import INTERVALS, PERIODS, Period, PeriodError, parse_period
from app.analytics.stats import (BREAKDOWNS, CHART_METRICS, DEFAULT_LIMIT, FILTERS, MAX_LIMIT, VISIT_METRICS, Filters,
                                 StatsError)
from app.ingest.schema import EventSchema
from app.ingest.sources import CHANNELS
from app.store.base import Site


ALL_BREAKDOWNS = BREAKDOWNS + TABLES
DEFAULT_COHORT_PERIODS = 12


@dataclass(frozen=True)
class ReportQuery:
    period: Period
    filters: Filters
    breakdowns: tuple[str, ...]
    limit: int
    event: str | None = None  # the custom event whose properties the "props" breakdown lists
    metric: str | None = None  # what the chart is asked to draw (stats.CHART_METRICS)
    # Journey reports (GET /api/stats only): asking any of them replaces the usual report.
    funnel: str | None = None
    funnel_breakdown: str | None = None
    paths: int | None = None
    page_flow: str | None = None
    cohorts: str | None = None
    cohort_periods: int = DEFAULT_COHORT_PERIODS

    @property
    def journeys(self) -> bool:
        """Whether any journey report is asked."""
        return any((self.funnel, self.paths, self.page_flow, self.cohorts))

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
_FILTER_FIELDS["channel"] = fields.String(load_default=None, metadata={
    "description": f"Filter: only visits of this channel, one of {', '.join(CHANNELS)} (their rules: docs/reports.md; "
                   "visits counted before 2026-12-03 had no paid, email or ai channel)."})


class ReportQuerySchema(Schema.from_dict(_FILTER_FIELDS)):  # type: ignore[misc]
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
                           metadata={"description": "Rows per breakdown (and per list of paths and page flow)."})


class StatsQuerySchema(ReportQuerySchema):
    """GET /api/stats: the report's query, and the journey reports it can answer instead. The
    dashboard's pages read these names their own way, so they are not in ReportQuerySchema."""
    funnel = fields.String(load_default=None, validate=validate.Length(min=1), metadata={
        "description": "A funnel's id (GET /api/funnels lists them): data.funnel is its report over the period. "
                       f"Only these filters apply to it: {', '.join(FUNNEL_DIMENSIONS)}. With any of funnel, "
                       "paths, page_flow or cohorts, data holds only those reports."})
    funnel_breakdown = fields.String(load_default=None, validate=validate.OneOf(FUNNEL_DIMENSIONS), metadata={
        "description": "With funnel: its visits per step for each value of this dimension."})
    paths = fields.Integer(load_default=None, validate=validate.Range(1, MAX_PATH_PAGES), metadata={
        "description": "data.paths: the most common paths of the visits' first N pages over the period (up to "
                       f"`limit`). Only these filters apply: {', '.join(FUNNEL_DIMENSIONS)}."})
    page_flow = fields.String(load_default=None, validate=[
        validate.Length(min=1, max=2048),
        validate.Regexp("^/", error="a page's path, beginning with /")], metadata={
        "description": "A page's path: data.page_flow, the pages viewed right after and right before it over the "
                       f"period (up to `limit` each). Only these filters apply: {', '.join(FUNNEL_DIMENSIONS)}."})
    cohorts = fields.String(load_default=None, validate=validate.OneOf(COHORT_PERIODS), metadata={
        "description": "data.cohorts: visitors grouped by the week or month of their first visit, and the share "
                       "of each seen again in each later one, up to today (the period is ignored). Filters: the "
                       "channel or the source of the first visit, one of them."})
    cohort_periods = fields.Integer(load_default=DEFAULT_COHORT_PERIODS,
                                    validate=validate.Range(1, max(MAX_PERIODS.values())), metadata={
        "description": "With cohorts: how many weeks (at most {week}) or months (at most {month}) back, the "
                       "current one included.".format(**MAX_PERIODS)})


_report_query, _stats_query = ReportQuerySchema(), StatsQuerySchema()
_JOURNEY_PARAMS = ("funnel", "funnel_breakdown", "paths", "page_flow", "cohorts", "cohort_periods")


def parse_report_query(args: dict, site: Site, now_ms: int, default_breakdowns=(),
                       journeys: bool = False) -> ReportQuery:
    """A ReportQuery from request arguments (with `journeys`, GET /api/stats's journey reports
    too); raises ValidationError with a clear message."""
    data = (_stats_query if journeys else _report_query).load({**args, "site": site.site_id})
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
    return ReportQuery(period, filters, breakdowns, data["limit"], data["event"], data["metric"],
                       **{name: data[name] for name in _JOURNEY_PARAMS if name in data})


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


# Journey reports (analytics/funnels.py, journeys.py, cohorts.py): every field they return.
class FunnelRefSchema(Schema):
    id = fields.String(metadata={"description": "The funnel's id: ?funnel=<id>."})
    name = fields.String()
    window_days = fields.Integer(metadata={
        "description": "0: steps count within one visit. 1 to 30: a visitor's later visits within this many days "
                       "of the first step take up where the earlier left off; each step counts once per journey, in "
                       "the visit that took it (its dimensions, no time from a step an earlier visit took)."})
    across_visits_since = fields.Date(allow_none=True, metadata={
        "description": "The site's local day from which the funnel follows visitors across visits (the day it "
                       "was made: before, each visit counts on its own); null within one visit."})


class FunnelStepSchema(Schema):
    kind = fields.String(validate=validate.OneOf(STEP_KINDS), metadata={
        "description": "page: a page view of a matching path; event: a custom event of that name; conversion: a "
                       "conversion of that name; goal: an event reaching that goal."})
    match = fields.String(metadata={
        "description": "A path or path pattern (* any characters but /, ** anything), an event or conversion "
                       "name, or a goal's id."})
    label = fields.String(metadata={"description": "The step in words (a goal step: the goal's name)."})


class FunnelDefinitionSchema(FunnelRefSchema):
    steps = fields.List(fields.Nested(FunnelStepSchema), metadata={"description": "In order."})


class FunnelStepFiguresSchema(FunnelStepSchema):
    step = fields.Integer(metadata={"description": "Its place in the funnel, from 1."})
    visits = fields.Integer(metadata={
        "description": "Visits that reached it after every step before, in order, within the visit (other "
                       "pages or events may come between, a step may repeat); across visits (window_days), "
                       "visits that took it after the steps before in that visit or the visitor's earlier ones."})
    continued = fields.Integer(allow_none=True, metadata={
        "description": "Of those, visits that reached the next step; null on the last step."})
    dropped = fields.Integer(allow_none=True, metadata={
        "description": "Of those, visits that did not reach the next step; null on the last step."})
    conversion_from_previous = fields.Float(allow_none=True, metadata={
        "description": "Percent of the previous step's visits (100 on the first); null without visits."})
    conversion_from_first = fields.Float(allow_none=True, metadata={
        "description": "Percent of the first step's visits; null without visits."})
    median_seconds_from_previous = fields.Float(allow_none=True, metadata={
        "description": "Median time from the previous step within the visit (exact below 100 s, within 5 % "
                       "above); null on the first step and when no visit reached this one."})
    visitors = fields.Integer(allow_none=True, metadata={
        "description": "Visitors (browsers) whose visits reached it, each once however many of their visits "
                       "did (unique-visitor sketches: exact below 100, within 1 % above). With filters, "
                       "the visitors of the visits that match them. Counted from the day the funnel was made "
                       "(visitors_since): null when the period begins before, with visits then."})


class FunnelBreakdownRowSchema(Schema):
    value = fields.String(metadata={"description": "A value of the dimension."})
    visits = fields.List(fields.Integer(), metadata={"description": "Its visits reaching each step, in order."})
    conversion_rate = fields.Float(allow_none=True, metadata={
        "description": "Percent of its first step's visits that reached the last step."})
    visitors = fields.List(fields.Integer(), allow_none=True, metadata={
        "description": "Visitors whose visits of this value (and the filters') reached each step, in order "
                       "(as the steps' visitors with this value as one more filter); null when the steps' are."})


class FunnelBreakdownSchema(Schema):
    dimension = fields.String(validate=validate.OneOf(FUNNEL_DIMENSIONS))
    rows = fields.List(fields.Nested(FunnelBreakdownRowSchema), metadata={
        "description": "Every value with visits on the first step, the most first."})


class FunnelSchema(Schema):
    funnel = fields.Nested(FunnelRefSchema)
    steps = fields.List(fields.Nested(FunnelStepFiguresSchema))
    entered = fields.Integer(metadata={"description": "Visits that reached the first step."})
    completed = fields.Integer(metadata={"description": "Visits that reached the last step."})
    conversion_rate = fields.Float(allow_none=True, metadata={
        "description": "completed / entered, in percent; null when no visit entered."})
    visitor_conversion_rate = fields.Float(allow_none=True, metadata={
        "description": "The last step's visitors / the first step's, in percent; null when visitors are."})
    visitors_since = fields.Date(allow_none=True, metadata={
        "description": "The site's local day from which the funnel's visitors are counted under these filters "
                       "(the day it was made); null for a funnel made before LiveInsight counted them (without "
                       "filters, or with)."})
    breakdown = fields.Nested(FunnelBreakdownSchema, metadata={"description": "With funnel_breakdown only."})


class PathSchema(Schema):
    pages = fields.List(fields.String(), metadata={
        "description": "The visit's first pages in order (a page viewed again right after itself once)."})
    visits = fields.Integer()
    ended = fields.Boolean(metadata={"description": "The visits viewed fewer pages than `length`: the path ends."})
    share = fields.Float(allow_none=True, metadata={"description": "Percent of `visits` of all paths."})


class PathsSchema(Schema):
    length = fields.Integer(metadata={"description": "Pages per path, as asked (paths=N)."})
    visits = fields.Integer(metadata={"description": "Visits that viewed a page, other paths included."})
    other_paths = fields.Integer(metadata={
        "description": f"Visits whose path was not among its day's {MAX_DAY_PATHS} most common, so not listed."})
    paths = fields.List(fields.Nested(PathSchema), metadata={"description": "The most visits first, up to `limit`."})


class PageFlowRowSchema(Schema):
    page = fields.String(metadata={
        "description": f"A page, or {EXIT} (next: the visit ended) or {ENTRANCE} (previous: the visit began)."})
    views = fields.Integer()
    share = fields.Float(allow_none=True, metadata={"description": "Percent of the page's views."})


class PageFlowSchema(Schema):
    page = fields.String(metadata={"description": "The page asked for (page_flow=)."})
    views = fields.Integer(metadata={"description": "Its views (viewed again right after itself: once)."})
    next = fields.List(fields.Nested(PageFlowRowSchema), metadata={
        "description": "What came right after each view, the most views first, up to `limit`."})
    previous = fields.List(fields.Nested(PageFlowRowSchema), metadata={
        "description": "What came right before each view, the most views first, up to `limit`."})


class RetentionSchema(Schema):
    offset = fields.Integer(metadata={"description": "Weeks or months after the cohort's own (0: its own)."})
    visitors = fields.Integer(metadata={"description": "The cohort's visitors seen in that week or month."})
    share = fields.Float(allow_none=True, metadata={"description": "Percent of the cohort; null if it is empty."})


class CohortSchema(Schema):
    cohort = fields.String(metadata={"description": "Its first day (YYYY-MM-DD): a Monday, or a month's 1st."})
    visitors = fields.Integer(metadata={"description": "Visitors whose first visit fell in it."})
    retention = fields.List(fields.Nested(RetentionSchema), metadata={
        "description": "One entry per week or month from its own up to the current one."})


class CohortsSchema(Schema):
    period = fields.String(validate=validate.OneOf(COHORT_PERIODS))
    periods = fields.Integer(metadata={"description": "Cohorts listed (cohort_periods)."})
    filter = fields.Dict(keys=fields.String(), values=fields.String(), metadata={
        "description": "The first visit's channel or source the cohorts are limited to; empty for all."})
    cohorts = fields.List(fields.Nested(CohortSchema), metadata={
        "description": "The oldest first; the last is the current week or month. Visitors whose tracker did "
                       "not record their first visit are in none."})


class FunnelListSchema(Schema):
    funnels = fields.List(fields.Nested(FunnelDefinitionSchema))


class FunnelsAnswerSchema(Schema):
    status = fields.Constant("success")
    data = fields.Nested(FunnelListSchema)


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
    # Journey reports: when any is asked, data holds only those asked.
    funnel = fields.Nested(FunnelSchema, metadata={"description": "With funnel=<id>."})
    paths = fields.Nested(PathsSchema, metadata={"description": "With paths=N."})
    page_flow = fields.Nested(PageFlowSchema, metadata={"description": "With page_flow=<path>."})
    cohorts = fields.Nested(CohortsSchema, metadata={"description": "With cohorts=week or month."})


class StatsAnswerSchema(Schema):
    status = fields.Constant("success")
    data = fields.Nested(StatsDataSchema)
