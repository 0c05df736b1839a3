"""The dashboard blueprint: the live view (views.py), historical reports (reports.py) and
site management (settings.py)."""
from . import reports, settings  # noqa: F401  (they register their routes on bp)
from .views import bp

__all__ = ["bp"]
