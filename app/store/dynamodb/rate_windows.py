"""Rate limit windows (app/limits.py's `store://`), in the aggregates table: an item
`RATE#<scope>#<seconds>#<key>` / `<window start>` whose `hits` a container adds its requests to
(one at a time, or a reserved share of a large limit at once: app/limits.py). Every
Lambda container counts in the same item, so a limit holds across them. TTL deletes a window a
minute after it ended (it has no `xpk`, so the retention sweep's `expiry` index never lists it)."""
from __future__ import annotations

WINDOW_KEPT_S = 60  # after its end, for a container whose clock is a little behind


class RateWindowsMixin:
    def hit_window(self, key: str, start_s: int, length_s: int, hits: int = 1) -> int:
        with self._errors():
            answer = self.client.update_item(
                TableName=self.aggregates_table, Key=self._key(f"RATE#{key}", str(start_s)),
                UpdateExpression="ADD hits :n SET expires_at = :expires", ReturnValues="UPDATED_NEW",
                ExpressionAttributeValues={":n": {"N": str(hits)},
                                           ":expires": {"N": str(start_s + length_s + WINDOW_KEPT_S)}})
        return int(answer["Attributes"]["hits"]["N"])
