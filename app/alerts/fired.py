"""What this process knows was added of a site's alerts and reports (by it, or by another that
got there first). Each stays due all its period, every minute or fold of it: once known, neither
the conditional write (`add_alert`) nor a read of the history is made for it again.

A site is known by its id and when it was made, so a site deleted and made again under the same
id (its history went with it) is a new one here too. The memory is forgotten whole past
MOST_KNOWN keys: a key forgotten costs one read of its site's history, and periods end."""
from __future__ import annotations

from typing import Callable, Iterable
from weakref import WeakKeyDictionary

from app.store.base import Alert, Site, Store

MOST_KNOWN = 100_000  # a few keys a site a day: 1,000 sites for some weeks
# Per store object, so that no other store (a test's, say) answers from it.
_KNOWN: WeakKeyDictionary[Store, set[tuple[str, int, str]]] = WeakKeyDictionary()


def _known(store: Store) -> set[tuple[str, int, str]]:
    known = _KNOWN.setdefault(store, set())
    if len(known) > MOST_KNOWN:
        known.clear()
    return known


def not_added(store: Store, site: Site, keys: Iterable[str], history: Callable[[], list[Alert]]) -> set[str]:
    """Of these keys, those not added yet as far as this process knows, having read the site's
    recent history (`history`, called only when some key is not known yet)."""
    known, of = _known(store), (site.site_id, site.created_ms)
    left = {key for key in keys if (*of, key) not in known}
    if left:
        known |= {(*of, alert.key) for alert in history()}
    return {key for key in left if (*of, key) not in known}


def remember(store: Store, site: Site, key: str) -> None:
    """The key is added now (whoever added it)."""
    _known(store).add((site.site_id, site.created_ms, key))
