"""Every report of a store, as JSON on stdout, from whichever release of the app is on
PYTHONPATH: the upgrade test (tests/test_upgrade.py) runs it with a previous release's code and
then with this one's on the same store, and compares. It uses only what both releases have: the
app factory, a fixed clock, the stats API and its list of breakdowns.

    python tests/upgrade_reports.py SITE_ID API_SECRET NOW_MS FIRST_DAY LAST_DAY
"""
import json
import sys

from app import create_app
from app.api.schemas import ALL_BREAKDOWNS
from app.clock import FixedClock


def reports(site_id: str, first: str, last: str) -> dict[str, str]:
    """name -> the query of a report: the whole report with every breakdown, over the custom
    period, a named period, with filters, and the journey reports."""
    period = f"site={site_id}&period=custom&from={first}&to={last}"
    every = ",".join(ALL_BREAKDOWNS) + "&event=Signed%20up"  # props: the demo sign-ups' properties
    return {
        "all breakdowns": f"/api/stats?{period}&breakdown={every}",
        "last 7 days": f"/api/stats?site={site_id}&period=7d&breakdown={every}",
        "visits chart": f"/api/stats?{period}&metric=visits&breakdown=page",
        "one page": f"/api/stats?{period}&page=/&breakdown={every}",
        "one country's visits": f"/api/stats?{period}&country=KR&breakdown=page,source",
        "organic search": f"/api/stats?{period}&channel=search&breakdown=page,source",
        "a goal's visits": f"/api/stats?{period}&goal=c:&breakdown=page",
        "paths": f"/api/stats?{period}&paths=3",
        "page flow": f"/api/stats?{period}&page_flow=/",
        "weekly cohorts": f"/api/stats?site={site_id}&cohorts=week",
        "realtime": f"/api/realtime?site={site_id}",
    }


def main(site_id: str, secret: str, now_ms: str, first: str, last: str) -> None:
    app = create_app({"RATE_LIMITS": False}, clock=FixedClock(int(now_ms)))
    client = app.test_client()
    answers = {}
    for name, path in reports(site_id, first, last).items():
        response = client.get(path, headers={"Authorization": f"Bearer {secret}"})
        assert response.status_code == 200, (name, response.status_code, response.get_data(as_text=True))
        answers[name] = response.json["data"]
    json.dump(answers, sys.stdout, sort_keys=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
