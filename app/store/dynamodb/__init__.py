"""DynamoDB backend: four on-demand tables, `<prefix>-sites`, `<prefix>-accounts`, `<prefix>-events`
and `<prefix>-aggregates`, designed from the access patterns in docs/dynamodb.md.

- Raw events are keyed `site#session` so the events table's stream hands the aggregator each
  session's events in order; a conditional put makes a duplicate a no-op with no stream record.
- The event log is the events table's stream, read by Lambda (`reads_own_log = False`): the
  stream function calls `fold`, which applies each event exactly once in a transaction with a
  marker per event and a journal item of its counter deltas and sketch additions, added to the
  counters and sketches later, merged.
- Keys that one busy site would make hot (its time-ordered indexes, its counters and sketches)
  are split over `shards` write shards; reads query every shard and merge.
- Nothing on a request path scans; `purge` deletes through the time-ordered indexes (TTL does
  the same for free on AWS, but moto and DynamoDB Local never expire items).

`DynamoDBStore` is one class composed of a mixin per concern, over the shared base:
- `client.py`: limits, items to and from records, key and bucket helpers; `DynamoDBBase`, the
  client with its errors, shards, paged queries, batches, conditional puts and transactions.
- `tables.py`: the table definitions, `create_schema` (with TTL), `check` and `backup`.
- `accounts.py`: sites, users, memberships, invitations, public links, API keys, the audit log.
- `traffic.py`: appending events; sessions, visitors, counters and sketches, written and read.
- `folding.py`: the event log: `fold`, exactly once, in transactions with markers.
- `journal.py`: the counter deltas and sketch additions those transactions journal, added
  later, merged, exactly once (`apply_journal`; `apply_journals` for the every-minute schedule).
- `retention.py`: `purge`, and a visitor's data shown (`visitor_data`) or erased.
- `sockets.py`: the dashboards watching a site through the WebSocket API (live push on AWS).
- `rate_windows.py`: rate limit counters every Lambda container shares.
- `upgrade.py`: moves what an earlier release kept in another layout (the purge runs it).

Clients are created on first use, never at import: moto must be active before one exists.
"""
from __future__ import annotations

from ..base import Store
from .accounts import AccountsMixin
from .client import MAX_BATCH_WRITE, DynamoDBBase, event_from_item, from_item, to_item
from .folding import FoldingMixin
from .journal import JournalMixin
from .rate_windows import RateWindowsMixin
from .retention import RetentionMixin
from .sockets import LiveSocketsMixin
from .tables import TablesMixin
from .traffic import TrafficMixin
from .upgrade import UpgradeMixin


class DynamoDBStore(AccountsMixin, LiveSocketsMixin, RateWindowsMixin, TrafficMixin, FoldingMixin, JournalMixin,
                    RetentionMixin, UpgradeMixin, TablesMixin, DynamoDBBase, Store):
    """The store on DynamoDB. The mixins come before `Store`, whose abstract methods they implement."""


__all__ = ["DynamoDBStore", "MAX_BATCH_WRITE", "event_from_item", "from_item", "to_item"]
