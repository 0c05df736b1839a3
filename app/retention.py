"""The retention job: month rollups, then deleting what is past retention. On the single box
the leading server process runs it (app/aggregation.py, every RETENTION_INTERVAL_S); on AWS
the hourly schedule function."""
from __future__ import annotations

from app.analytics.rollups import roll_up_site
from app.store.base import Store


def run_retention(store: Store, now_ms: int) -> dict:
    """Roll up the months that are due (every site), then purge; returns what each did."""
    rolled_up = {site.site_id: months for site in store.list_sites()
                 if (months := roll_up_site(store, site, now_ms))}
    return {"rolled_up_months": rolled_up, "deleted": store.purge(now_ms)}
