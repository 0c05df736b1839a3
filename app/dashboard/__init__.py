"""The dashboard blueprint: the live view (views.py) and historical reports (reports.py)."""
from . import reports  # noqa: F401  (registers the report routes on bp)
from .views import bp

__all__ = ["bp"]
