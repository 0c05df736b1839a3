"""Storage: pick a backend from the LIVEINSIGHT_STORE URL scheme."""
from __future__ import annotations

from urllib.parse import urlsplit

from .base import Store, StoreError


def open_store(url: str) -> Store:
    """`sqlite:///relative/or/absolute.db` (`sqlite:////abs/path.db`) or `dynamodb://<table-prefix>`."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        from .sqlite import SQLiteStore
        path = url[len("sqlite:///"):] if url.startswith("sqlite:///") else ""
        if not path:
            raise StoreError(f"bad sqlite store URL {url!r}: use sqlite:///path/to/file.db")
        return SQLiteStore(path)
    if scheme == "dynamodb":
        from .dynamodb import DynamoDBStore
        prefix = url[len("dynamodb://"):].strip("/")
        if not prefix:
            raise StoreError(f"bad dynamodb store URL {url!r}: use dynamodb://<table-prefix>")
        return DynamoDBStore(prefix)
    raise StoreError(f"unknown store URL scheme in {url!r} (use sqlite:/// or dynamodb://)")


__all__ = ["open_store", "Store", "StoreError"]
