"""The dashboard blueprint: its pages (views.py; funnels, journeys and retention in journeys.py)
made of widgets (widgets.py, journey_widgets.py), the words and formats they use (words.py,
formatting.py, charts.py, countries.py), a new site's first run (first_run.py), exports
(reports.py), site management (settings.py, goals.py, keys.py, privacy.py) and alerts (alerts.py)."""
from . import alerts, formatting, goals, journeys, keys, privacy, reports, settings, sources, words  # noqa: F401  (they register on bp)
from .views import bp

__all__ = ["bp"]
