"""The retention job: month rollups, the digests of the journey pages, then deleting what is
past retention. On the single box
the leading server process runs it (app/aggregation.py, every RETENTION_INTERVAL_S); on AWS
the hourly schedule function."""
from __future__ import annotations

from app.analytics.journeys import keep_digests
from app.analytics.rollups import roll_up_site
from app.store.base import Store


def run_retention(store: Store, now_ms: int) -> dict:
    """Roll up the months that are due and make the journey digests (every site), then purge;
    returns what each did."""
    sites = store.list_sites()
    rolled_up = {site.site_id: months for site in sites if (months := roll_up_site(store, site, now_ms))}
    digests = {site.site_id: keep_digests(store, site, now_ms) for site in sites}
    return {"rolled_up_months": rolled_up, "journey_reports": digests, "deleted": store.purge(now_ms)}
