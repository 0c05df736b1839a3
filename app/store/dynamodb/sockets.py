"""Dashboards watching a site's realtime page through the WebSocket API (app/live_sockets.py),
in the accounts table: `SITE#<site>/SOCKET#<connection>` lists a site's sockets for the stream
function to push to, `SOCKET#<connection>/SOCKET` names the site for $disconnect (which knows
only the connection), and `SITE#<site>/LIVEPUSH` holds when the site was last pushed."""
from __future__ import annotations

from dataclasses import asdict, fields

from botocore.exceptions import ClientError

from ..records import LiveSocket
from .client import _code, to_item

SOCKET_FIELDS = tuple(f.name for f in fields(LiveSocket))


class LiveSocketsMixin:
    def add_live_socket(self, socket: LiveSocket) -> None:
        record = asdict(socket)
        with self._errors():
            self._batch_write(self.accounts_table, [
                {"PutRequest": {"Item": to_item({**record, "pk": f"SITE#{socket.site_id}",
                                                 "sk": f"SOCKET#{socket.connection_id}"})}},
                {"PutRequest": {"Item": to_item({**record, "pk": f"SOCKET#{socket.connection_id}", "sk": "SOCKET"})}}])

    def drop_live_socket(self, connection_id: str) -> LiveSocket | None:
        item = self._account_get(f"SOCKET#{connection_id}", "SOCKET")
        if item is None:
            return None
        socket = self._socket(item)
        with self._errors():
            self._batch_write(self.accounts_table, [
                {"DeleteRequest": {"Key": self._key(f"SITE#{socket.site_id}", f"SOCKET#{connection_id}")}},
                {"DeleteRequest": {"Key": self._key(f"SOCKET#{connection_id}", "SOCKET")}}])
        return socket

    def live_sockets(self, site_id: str) -> list[LiveSocket]:
        return [self._socket(item) for item in self._account_query("pk", f"SITE#{site_id}", "SOCKET#")]

    @staticmethod
    def _socket(item: dict) -> LiveSocket:
        return LiveSocket(**{name: item[name] for name in SOCKET_FIELDS if name in item})  # (language: since i18n)

    def claim_live_push(self, site_id: str, now_ms: int, every_ms: int) -> bool:
        with self._errors():
            try:
                self.client.update_item(
                    TableName=self.accounts_table, Key=self._key(f"SITE#{site_id}", "LIVEPUSH"),
                    UpdateExpression="SET pushed_ms = :now",
                    ConditionExpression="attribute_not_exists(pushed_ms) OR pushed_ms <= :since",
                    ExpressionAttributeValues={":now": {"N": str(now_ms)}, ":since": {"N": str(now_ms - every_ms)}})
                return True
            except ClientError as exc:
                if _code(exc) == "ConditionalCheckFailedException":
                    return False
                raise
