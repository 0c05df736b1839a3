"""Upgrades of what an earlier release kept in the aggregates table, done by the hourly purge.

Counters: until December 2026 an item held one metric (`C#site#grain#metric#dimension#shard`,
its count in `n`); now an item holds every metric of a (dimension, bucket, value), an attribute
each (`K#...`, traffic.py). `pack_counters` moves a site's old items, found through the `expiry`
index, each exactly once: the ADD to the new item and the conditional deletes of the old ones
are one transaction, so a move cut short, or two purges at once, count nothing twice. Once a
purge finds none left for a site, its registry item says `packed` and the site is not walked
again. Until the first purge after the upgrade, reports lack the days counted before it.
"""
from __future__ import annotations

import logging
from collections import defaultdict

from .client import REGISTRY_PK
from .traffic import CounterItem

OLD_COUNTER = "C#"
log = logging.getLogger(__package__)


class UpgradeMixin:
    """Moves a site's counters from the layout of a release before to today's."""

    def pack_counters(self, site_id: str) -> int:
        """Move the site's one-metric counter items; how many were moved. The purge calls it
        while the site's registry item does not say `packed`."""
        found = self._map(lambda shard: self._old_items(site_id, shard), range(self.shards))
        targets = {(item, shard): olds for shard, items in enumerate(found) for item, olds in items.items()}
        # Listed before they are written (retention.py), from this thread: no request from the pool's.
        self._list_partitions(p for item, shard in targets for p in self._counter_partitions([item], shard))
        moves = [(len(olds), self._move(item, olds, shard)) for (item, shard), olds in targets.items()]
        moved = sum(n for (n, _), done in zip(moves, self._map(self._transact, [m for _, m in moves])) if done)
        if moved:
            log.info("site %s: %d counter items moved to the packed layout", site_id, moved)
        else:  # none left: later purges need not look (one more walk after a purge that moved some)
            self.client.update_item(TableName=self.aggregates_table, Key=self._key(REGISTRY_PK, site_id),
                                    UpdateExpression="SET packed = :yes", ExpressionAttributeValues={":yes": {"BOOL": True}})
        return moved

    def _old_items(self, site_id: str, shard: int) -> dict[CounterItem, list[tuple[str, dict]]]:
        """One shard's old items, by the new item each moves to: (metric, old item) each."""
        keys = [{"pk": i["pk"], "sk": i["sk"]} for i in self._query(
            TableName=self.aggregates_table, IndexName="expiry", KeyConditionExpression="xpk = :p",
            FilterExpression="begins_with(pk, :old)",
            ExpressionAttributeValues={":p": {"S": f"{site_id}#{shard}"}, ":old": {"S": OLD_COUNTER}})]
        targets: dict[CounterItem, list[tuple[str, dict]]] = defaultdict(list)
        for old in self._batch_get(self.aggregates_table, keys, consistent=True):
            _, grain, metric, dimension, _ = old["pk"]["S"].rsplit("#", 4)
            item = (site_id, grain, dimension, int(old["sk"]["S"][:10]), old["value"]["S"])
            targets[item].append((metric, old))
        return targets

    def _move(self, item: CounterItem, olds: list[tuple[str, dict]], shard: int) -> list[dict]:
        """One transaction: the old items' counts added to the new item, the old items deleted
        if they are still there (else it is cancelled: someone moved them already)."""
        metrics = {metric: float(old["n"]["N"]) for metric, old in olds}
        return ([{"Update": self._counter_update(item, metrics, shard)}]
                + [{"Delete": {"TableName": self.aggregates_table, "Key": {"pk": old["pk"], "sk": old["sk"]},
                               "ConditionExpression": "attribute_exists(pk)"}} for _, old in olds])
