"""What this process knows was added of a site's alerts and reports (by it, or by another that
got there first). Each stays due all its period, every minute or fold of it: once known, neither
the conditional write (`add_alert`) nor a read of the history is made for it again."""
from __future__ import annotations

from typing import Callable, Iterable
from weakref import WeakKeyDictionary

from app.store.base import Alert, Store

# Per store object, so that no other store (a test's, say) answers from it; a few keys a site a day.
_KNOWN: WeakKeyDictionary[Store, set[tuple[str, str]]] = WeakKeyDictionary()


def not_added(store: Store, site_id: str, keys: Iterable[str], history: Callable[[], list[Alert]]) -> set[str]:
    """Of these keys, those not added yet as far as this process knows, having read the site's
    recent history (`history`, called only when some key is not known yet)."""
    known = _KNOWN.setdefault(store, set())
    left = {key for key in keys if (site_id, key) not in known}
    if left:
        known |= {(site_id, alert.key) for alert in history()}
    return {key for key in left if (site_id, key) not in known}


def remember(store: Store, site_id: str, key: str) -> None:
    """The key is added now (whoever added it)."""
    _KNOWN.setdefault(store, set()).add((site_id, key))
