"""The tables: their definitions and TTL (`create_schema`), and the operations on them: the
health check and backups."""
from __future__ import annotations

from botocore.exceptions import ClientError

from ..records import StoreError
from .client import _code

def _gsi(name: str, hash_key: str, range_key: str, projection: str = "ALL") -> dict:
    return {"IndexName": name,
            "KeySchema": [{"AttributeName": hash_key, "KeyType": "HASH"},
                          {"AttributeName": range_key, "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": projection}}


def _attributes(**types: str) -> list[dict]:
    return [{"AttributeName": name, "AttributeType": kind} for name, kind in types.items()]


PK_SK = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]


class TablesMixin:
    """The tables: creating them, checking they answer, and why there is no backup here."""

    # -- schema (local, dev and tests; on AWS template.yaml creates the same tables)
    def _table_specs(self) -> list[dict]:
        on_demand = {"BillingMode": "PAY_PER_REQUEST"}
        return [
            {"TableName": self.sites_table, **on_demand,
             "KeySchema": [{"AttributeName": "site_id", "KeyType": "HASH"}],
             "AttributeDefinitions": _attributes(site_id="S", tracker_key="S", kind="S", created_ms="N"),
             "GlobalSecondaryIndexes": [
                 {"IndexName": "by_key", "Projection": {"ProjectionType": "ALL"},
                  "KeySchema": [{"AttributeName": "tracker_key", "KeyType": "HASH"}]},
                 _gsi("by_created", "kind", "created_ms")]},
            {"TableName": self.events_table, **on_demand, "KeySchema": PK_SK,
             "AttributeDefinitions": _attributes(pk="S", sk="S", feed="S", time_key="S"),
             "GlobalSecondaryIndexes": [_gsi("by_time", "feed", "time_key")],
             "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}},
            {"TableName": self.aggregates_table, **on_demand, "KeySchema": PK_SK,
             "AttributeDefinitions": _attributes(pk="S", sk="S", xpk="S", expires_at="N", visitor_key="S",
                                                 started_ms="N"),
             "GlobalSecondaryIndexes": [_gsi("expiry", "xpk", "expires_at", "KEYS_ONLY"),
                                        _gsi("by_visitor", "visitor_key", "started_ms", "KEYS_ONLY")]},
            # Users, memberships and public links; `inverted` reads each relation from its other end.
            {"TableName": self.accounts_table, **on_demand, "KeySchema": PK_SK,
             "AttributeDefinitions": _attributes(pk="S", sk="S"),
             "GlobalSecondaryIndexes": [_gsi("inverted", "sk", "pk")]},
        ]

    def create_schema(self) -> None:
        """Create the tables that are missing and make sure TTL is on; safe to repeat."""
        with self._errors():
            for spec in self._table_specs():
                name = spec["TableName"]
                if not self._table_exists(name):
                    self.client.create_table(**spec)
                    self.client.get_waiter("table_exists").wait(
                        TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
                if name not in (self.sites_table, self.accounts_table):
                    self._enable_ttl(name)

    def open_schema(self) -> None:
        """The stack (template.yaml) makes the tables; init-db makes those of a store outside one."""
        with self._errors():
            names = {spec["TableName"] for spec in self._table_specs()}
            missing = sorted(name for name in names if not self._table_exists(name))
        if missing:
            region = self.client.meta.region_name
            raise StoreError(f"no table {', '.join(missing)} in {region}: LIVEINSIGHT_STORE (the stack's StoreUrl "
                             f"output) or AWS_REGION names another store than the stack's; `init-db` makes the "
                             f"tables of a store outside a stack")

    def _table_exists(self, name: str) -> bool:
        try:
            self.client.describe_table(TableName=name)
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return False
            raise
        return True

    def _enable_ttl(self, table: str) -> None:
        status = self.client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        if status["TimeToLiveStatus"] in ("DISABLED", "DISABLING"):
            self.client.update_time_to_live(TableName=table, TimeToLiveSpecification={
                "Enabled": True, "AttributeName": "expires_at"})

    # -- operations
    def check(self) -> None:
        with self._errors():
            self.client.get_item(TableName=self.sites_table, Key={"site_id": {"S": "-"}})

    def backup(self, path: str) -> None:
        raise StoreError("DynamoDB keeps its own backups: point-in-time recovery is on for every table "
                         "(restore to any second of the last 35 days), and `aws dynamodb create-backup` "
                         "makes an on-demand one (docs/aws.md, Backups)")
