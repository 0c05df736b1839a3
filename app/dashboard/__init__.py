"""The dashboard blueprint: its pages (views.py; funnels, journeys and retention in journeys.py)
made of widgets (widgets.py, journey_widgets.py), the words and formats they use (words.py,
formatting.py, charts.py, countries.py), a new site's first run (first_run.py), exports
(reports.py), site management (settings.py, goals.py, keys.py, privacy.py), alerts (alerts.py) and
the reports' unsubscribe links (unsubscribe.py)."""
from . import (  # noqa: F401  (they register on bp)
    alerts, formatting, goals, journeys, keys, privacy, reports, settings, sources, unsubscribe, words,
)
from .views import bp

__all__ = ["bp"]
