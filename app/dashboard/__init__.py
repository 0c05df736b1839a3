"""The dashboard blueprint: the live view (views.py), historical reports (reports.py) and
site management (settings.py, with its API keys in keys.py and privacy in privacy.py)."""
from . import goals, keys, privacy, reports, settings  # noqa: F401  (they register their routes on bp)
from .views import bp

__all__ = ["bp"]
