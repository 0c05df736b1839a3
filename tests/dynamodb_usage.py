"""The store's DynamoDB requests, metered: counted through botocore's event hooks, with the
write and read units each costs by AWS's sizing rules, and the index writes it makes. What
docs/dynamodb.md's figures and tests/test_aws_cost.py's price come from."""
from __future__ import annotations

import math
import threading
from collections import Counter

# The aggregates table's items by the start of their partition key, and the index entries each
# has (template.yaml): a visit is in `expiry` and `by_visitor`; a visitor in `expiry`, and so
# were counters before December 2026 (`C#`); counters and sketches made since (`K#`, `U#`),
# markers, rate windows and the registry in none.
INDEXED = {"S#": 2, "V#": 1, "C#": 1}


class Usage:
    """1 KB a write unit, transactional writes twice; 4 KB a read unit, half for eventually
    consistent reads (the store's Query and GetItem; its BatchGetItem reads consistently when
    aggregating), at least half a unit a Query. A delete costs a unit (items here are under
    1 KB but sketches, which are deleted only after 400 days).

    `index_writes` counts what the requests say of the global secondary indexes: an event put
    writes `by_time`; a visit's put is new in `expiry` and `by_visitor`, a visitor's new in
    `expiry`, and either moves in `expiry` (a delete and a put) when its expires_at changed;
    every delete of an indexed item deletes its entries. Counters and sketches made before
    December 2026 entered `expiry` too (`xpk`); those made since are left to TTL and enter no index."""

    def __init__(self, client):
        self.requests: Counter[str] = Counter()
        self._expiry: dict[str, str] = {}  # a visit's or visitor's expires_at as last put
        self.write_units = 0.0
        self.read_units = 0.0
        self.index_writes = 0
        # The store sends requests from a thread pool (a Query a shard): each hook's += must not
        # interleave with another's, or a count is lost (seen under `make stress`).
        self._lock = threading.Lock()
        client.meta.events.register("before-parameter-build.dynamodb", self._locked(self._before))
        client.meta.events.register("after-call.dynamodb", self._locked(self._after))

    def _locked(self, hook):
        def locked(**kwargs):
            with self._lock:
                hook(**kwargs)
        return locked

    def _before(self, model, params, **_):
        self.requests[model.name] += 1
        if model.name == "PutItem":
            self.write_units += _units(params["Item"], 1024)
            self.index_writes += self._put_index_writes(params)
        elif model.name in ("UpdateItem", "DeleteItem"):
            self.write_units += 1  # counters and windows: small items (or, below, as returned); a delete of one
            if model.name == "DeleteItem":
                self.index_writes += _delete_index_writes(params["TableName"], params["Key"])
        elif model.name == "TransactWriteItems":
            for action in params["TransactItems"]:
                (kind, body), = action.items()
                self.write_units += 2 * (_units(body["Item"], 1024) if kind == "Put" else 1)
                if kind == "Put":
                    self.index_writes += self._put_index_writes(body)
                elif kind == "Delete":
                    self.index_writes += _delete_index_writes(body["TableName"], body["Key"])
        elif model.name == "BatchWriteItem":
            for table, requests in params["RequestItems"].items():
                for request in requests:
                    if "PutRequest" in request:
                        item = request["PutRequest"]["Item"]
                        self.write_units += _units(item, 1024)
                        self.index_writes += self._put_index_writes({"TableName": table, "Item": item})
                    else:
                        self.write_units += 1
                        self.index_writes += _delete_index_writes(table, request["DeleteRequest"]["Key"])
        elif model.name == "BatchGetItem":  # a key costs a (consistent) unit, found or not
            self.read_units += sum(len(table["Keys"]) for table in params["RequestItems"].values())
        elif model.name == "GetItem":
            self.read_units += 0.5

    def _after(self, model, parsed, **_):
        if model.name == "UpdateItem" and "Attributes" in parsed:  # a unit a KB of the item it returned
            self.write_units += _units(parsed["Attributes"], 1024) - 1  # (the live widgets' minute items)
        elif model.name == "Query":
            size = sum(_size(item) for item in parsed.get("Items", []))
            self.read_units += max(0.5, math.ceil(size / 4096) / 2)
        elif model.name == "BatchGetItem":  # and a unit more for each further 4 KB (sketches)
            self.read_units += sum(_units(item, 4096) - 1
                                   for table in parsed["Responses"].values() for item in table)

    def _put_index_writes(self, put: dict) -> int:
        item, new = put["Item"], "attribute_not_exists" in put.get("ConditionExpression", "")
        if put["TableName"].endswith("-events"):
            return 1  # by_time
        pk = item["pk"]["S"]
        session = pk.startswith("S#") and item["sk"]["S"] == "session"
        if session or pk.startswith("V#"):  # new in expiry (a visit in by_visitor too); else moved, if it changed
            before, self._expiry[pk] = self._expiry.get(pk), item["expires_at"]["N"]
            return (1 + session) if new else 2 * (before != item["expires_at"]["N"])
        if pk.startswith("U#"):  # in `expiry` only if made before December 2026 (left to TTL since)
            return 1 if new and "xpk" in item else 0  # a sketch's expiry stays its day's
        return 0

    def reset(self) -> None:
        self.requests.clear()
        self.write_units = self.read_units = 0.0
        self.index_writes = 0


def _delete_index_writes(table: str, key: dict) -> int:
    if table.endswith("-events"):
        return 1
    if key["pk"]["S"].startswith("S#") and key["sk"]["S"] != "session":
        return 0  # an applied-event marker
    return INDEXED.get(key["pk"]["S"][:2], 0)


def _size(value) -> int:
    """An item's (or attribute value's) size in bytes as DynamoDB counts it."""
    if "S" in value or "B" in value:
        return len(value.get("S", "").encode()) + len(value.get("B", b""))
    if "N" in value:
        return len(value["N"].lstrip("-").replace(".", "")) // 2 + 1
    if "SS" in value:  # a journal run's lease lists its items (journal.py)
        return sum(len(s.encode()) for s in value["SS"])
    if "L" in value:
        return 3 + sum(1 + _size(v) for v in value["L"])
    if len(value) == 1 and "M" in value:  # a map (a visit's `applied`); an item has its keys too
        return 3 + sum(1 + len(name.encode()) + _size(v) for name, v in value["M"].items())
    if "NULL" in value or "BOOL" in value:
        return 1
    return sum(len(name.encode()) + _size(v) for name, v in value.items())  # an item


def _units(item: dict, unit: int) -> int:
    return max(1, math.ceil(_size(item) / unit))
