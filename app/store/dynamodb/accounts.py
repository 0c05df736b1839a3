"""Sites (the sites table) and everything of the accounts table: users, memberships,
invitations, public links, API keys and the audit log."""
from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, fields
from typing import Iterable

from botocore.exceptions import ClientError

from ..records import Alert, ApiKey, AuditEntry, Conflict, Invitation, Login, Membership, PublicLink, Site, StoreError, User
from .client import ATTEMPTS, REGISTRY_PK, _code, from_item, to_item

SITE_FIELDS = tuple(f.name for f in fields(Site))
USER_FIELDS = tuple(f.name for f in fields(User))
MEMBERSHIP_FIELDS = tuple(f.name for f in fields(Membership))
LINK_FIELDS = tuple(f.name for f in fields(PublicLink))
INVITATION_FIELDS = tuple(f.name for f in fields(Invitation))
API_KEY_FIELDS = tuple(f.name for f in fields(ApiKey))
AUDIT_FIELDS = tuple(f.name for f in fields(AuditEntry))
ALERT_FIELDS = tuple(f.name for f in fields(Alert))


class AccountsMixin:
    """Sites, users, memberships, invitations, public links, API keys and the audit log."""

    # -- sites
    def create_site(self, site: Site) -> None:
        with self._errors():
            pending = self.client.get_item(TableName=self.aggregates_table, ConsistentRead=True,
                                           Key=self._key(REGISTRY_PK, site.site_id)).get("Item")
            if pending and "deleting" in pending:  # its traffic would be the new site's, then purged with it
                raise StoreError(f"site {site.site_id!r} is still being deleted (its data goes within the "
                                 f"hour): choose another id, or try again then")
            try:
                self.client.put_item(TableName=self.sites_table, Item=to_item({**asdict(site), "kind": "site"}),
                                     ConditionExpression="attribute_not_exists(site_id)")
            except ClientError as exc:
                if _code(exc) == "ConditionalCheckFailedException":
                    raise StoreError(f"site {site.site_id!r} exists already") from exc
                raise

    @staticmethod
    def _site(item: dict) -> Site:
        data = from_item(item)
        return Site(**{name: data[name] for name in SITE_FIELDS if name in data})

    def get_site(self, site_id: str) -> Site | None:
        with self._errors():
            item = self.client.get_item(TableName=self.sites_table, Key={"site_id": {"S": site_id}}).get("Item")
        return self._site(item) if item else None

    def get_site_by_key(self, tracker_key: str) -> Site | None:
        with self._errors():
            items = self.client.query(
                TableName=self.sites_table, IndexName="by_key", KeyConditionExpression="tracker_key = :k",
                ExpressionAttributeValues={":k": {"S": tracker_key}})["Items"]
        return self._site(items[0]) if items else None

    def list_sites(self) -> list[Site]:
        with self._errors():
            items = self._query(TableName=self.sites_table, IndexName="by_created",
                                KeyConditionExpression="kind = :site",
                                ExpressionAttributeValues={":site": {"S": "site"}})
        return [self._site(item) for item in items]

    def update_site(self, site: Site) -> None:
        names = {f"#{i}": field_name for i, field_name in enumerate(Site.EDITABLE)}
        values = to_item({f":{i}": getattr(site, field_name) for i, field_name in enumerate(Site.EDITABLE)})
        with self._errors():
            self.client.update_item(TableName=self.sites_table, Key={"site_id": {"S": site.site_id}},
                                    ConditionExpression="attribute_exists(site_id)",
                                    UpdateExpression="SET " + ", ".join(f"#{i} = :{i}" for i in range(len(names))),
                                    ExpressionAttributeNames=names, ExpressionAttributeValues=values)

    def set_rolled_up_month(self, site_id: str, month: int) -> None:
        with self._errors():
            self.client.update_item(TableName=self.sites_table, Key={"site_id": {"S": site_id}},
                                    ConditionExpression="attribute_exists(site_id)",
                                    UpdateExpression="SET rolled_up_month = :m",
                                    ExpressionAttributeValues={":m": {"N": str(month)}})

    def delete_site(self, site_id: str) -> None:
        """The site and its records now; its traffic at the next purge (the retention function,
        hourly), marked `deleting` in the registry meanwhile. A busy site's traffic is more than
        a request's 15 s can delete, and the web function may not write the traffic tables in
        bulk (template.yaml: BatchWriteItem could put any item there, not only delete)."""
        with self._errors():
            self.client.update_item(TableName=self.aggregates_table, Key=self._key(REGISTRY_PK, site_id),
                                    UpdateExpression="SET deleting = :yes", ExpressionAttributeValues={":yes": {"BOOL": True}})
            self._registered.discard(site_id)
            self._delete(self.accounts_table, self._query(
                TableName=self.accounts_table, ProjectionExpression="pk, sk",
                KeyConditionExpression="pk = :site", ExpressionAttributeValues={":site": {"S": f"SITE#{site_id}"}}))
            self.client.delete_item(TableName=self.sites_table, Key={"site_id": {"S": site_id}})

    # -- accounts: USER#id/USER, EMAIL#email/EMAIL (keeps emails unique),
    #    SITE#site/MEMBER#user and SITE#site/LINK#hash
    def _account_get(self, pk: str, sk: str) -> dict | None:
        with self._errors():
            item = self.client.get_item(TableName=self.accounts_table, ConsistentRead=True,
                                        Key={"pk": {"S": pk}, "sk": {"S": sk}}).get("Item")
        return from_item(item) if item else None

    def _account_put(self, record, pk: str, sk: str) -> None:
        """A record (a dataclass) as the item at pk/sk, replacing any there."""
        with self._errors():
            self.client.put_item(TableName=self.accounts_table, Item=to_item({**asdict(record), "pk": pk, "sk": sk}))

    def _account_delete(self, pk: str, sk: str) -> None:
        with self._errors():
            self.client.delete_item(TableName=self.accounts_table, Key={"pk": {"S": pk}, "sk": {"S": sk}})

    def _account_query(self, key: str, value: str, prefix: str = "") -> list[dict]:
        """Items whose `key` ("pk", or "sk" through the inverted index) is value, the other
        key starting with prefix."""
        other = "sk" if key == "pk" else "pk"
        index = {"IndexName": "inverted"} if key == "sk" else {}
        condition, values = f"{key} = :v", {":v": {"S": value}}
        if prefix:
            condition, values[":p"] = condition + f" AND begins_with({other}, :p)", {"S": prefix}
        with self._errors():
            items = self._query(TableName=self.accounts_table, **index,
                                KeyConditionExpression=condition, ExpressionAttributeValues=values)
        return [from_item(item) for item in items]

    @staticmethod
    def _user_item(user: User) -> dict:
        return to_item({**asdict(user), "logins": json.dumps(user.logins), "pk": f"USER#{user.user_id}", "sk": "USER"})

    @staticmethod
    def _user(item: dict) -> User:
        user = User(**{name: item[name] for name in USER_FIELDS if name in item})
        user.logins = [Login(*login) for login in json.loads(item.get("logins") or "[]")]
        return user

    def create_user(self, user: User) -> None:
        record = self._user_item(user)
        email = to_item({"pk": f"EMAIL#{user.email}", "sk": "EMAIL", "user_id": user.user_id})
        new = "attribute_not_exists(pk)"
        with self._errors():
            try:
                self.client.transact_write_items(TransactItems=[
                    {"Put": {"TableName": self.accounts_table, "Item": email, "ConditionExpression": new}},
                    {"Put": {"TableName": self.accounts_table, "Item": record, "ConditionExpression": new}}])
            except ClientError as exc:
                if _code(exc) == "TransactionCanceledException":
                    raise Conflict(f"a user with the email {user.email!r} exists already") from exc
                raise

    def get_user(self, user_id: str) -> User | None:
        item = self._account_get(f"USER#{user_id}", "USER")
        return self._user(item) if item else None

    def get_user_by_email(self, email: str) -> User | None:
        item = self._account_get(f"EMAIL#{email}", "EMAIL")
        return self.get_user(item["user_id"]) if item else None

    def list_users(self) -> list[User]:
        users = [self._user(item) for item in self._account_query("sk", "USER")]
        return sorted(users, key=lambda u: u.email)

    def update_user(self, user: User) -> None:
        with self._errors():
            self.client.put_item(TableName=self.accounts_table, ConditionExpression="attribute_exists(pk)",
                                 Item=self._user_item(user))

    def delete_user(self, user_id: str) -> None:
        user = self.get_user(user_id)
        if user is None:
            return
        for membership in self.user_memberships(user_id):
            self.delete_membership(membership.site_id, user_id)
        with self._errors():
            self._delete(self.accounts_table, [{"pk": {"S": f"EMAIL#{user.email}"}, "sk": {"S": "EMAIL"}},
                                               {"pk": {"S": f"USER#{user_id}"}, "sk": {"S": "USER"}}])

    def put_membership(self, membership: Membership) -> None:
        self._account_put(membership, f"SITE#{membership.site_id}", f"MEMBER#{membership.user_id}")

    def delete_membership(self, site_id: str, user_id: str) -> None:
        self._account_delete(f"SITE#{site_id}", f"MEMBER#{user_id}")

    @staticmethod
    def _membership(item: dict) -> Membership:
        return Membership(**{name: item[name] for name in MEMBERSHIP_FIELDS})

    def get_membership(self, site_id: str, user_id: str) -> Membership | None:
        item = self._account_get(f"SITE#{site_id}", f"MEMBER#{user_id}")
        return self._membership(item) if item else None

    def site_members(self, site_id: str) -> list[Membership]:
        members = [self._membership(i) for i in self._account_query("pk", f"SITE#{site_id}", "MEMBER#")]
        return sorted(members, key=lambda m: (m.created_ms, m.user_id))

    def user_memberships(self, user_id: str) -> list[Membership]:
        members = [self._membership(i) for i in self._account_query("sk", f"MEMBER#{user_id}", "SITE#")]
        return sorted(members, key=lambda m: (m.created_ms, m.site_id))

    # SITE#site/INVITE#email (found by email through the inverted index)
    def put_invitation(self, invitation: Invitation) -> None:
        self._account_put(invitation, f"SITE#{invitation.site_id}", f"INVITE#{invitation.email}")

    @staticmethod
    def _invitation(item: dict) -> Invitation:
        return Invitation(**{name: item[name] for name in INVITATION_FIELDS})

    def get_invitation(self, site_id: str, email: str) -> Invitation | None:
        item = self._account_get(f"SITE#{site_id}", f"INVITE#{email}")
        return self._invitation(item) if item else None

    @staticmethod
    def _oldest_first(invitations: Iterable[Invitation]) -> list[Invitation]:
        return sorted(invitations, key=lambda i: (i.created_ms, i.site_id, i.email))

    def site_invitations(self, site_id: str) -> list[Invitation]:
        return self._oldest_first(map(self._invitation, self._account_query("pk", f"SITE#{site_id}", "INVITE#")))

    def email_invitations(self, email: str) -> list[Invitation]:
        return self._oldest_first(map(self._invitation, self._account_query("sk", f"INVITE#{email}", "SITE#")))

    def delete_invitation(self, site_id: str, email: str) -> None:
        self._account_delete(f"SITE#{site_id}", f"INVITE#{email}")

    @staticmethod
    def _link(item: dict) -> PublicLink:
        return PublicLink(**{name: item.get(name) for name in LINK_FIELDS})

    def create_public_link(self, link: PublicLink) -> None:
        self._account_put(link, f"SITE#{link.site_id}", f"LINK#{link.token_hash}")

    def get_public_link(self, token_hash: str) -> PublicLink | None:
        items = self._account_query("sk", f"LINK#{token_hash}", "SITE#")
        return self._link(items[0]) if items else None

    def list_public_links(self, site_id: str) -> list[PublicLink]:
        links = [self._link(i) for i in self._account_query("pk", f"SITE#{site_id}", "LINK#")]
        return sorted(links, key=lambda link: link.created_ms)

    def revoke_public_link(self, token_hash: str, revoked_ms: int) -> None:
        link = self.get_public_link(token_hash)
        if link is None or link.revoked_ms is not None:
            return
        with self._errors():
            self.client.update_item(
                TableName=self.accounts_table,
                Key={"pk": {"S": f"SITE#{link.site_id}"}, "sk": {"S": f"LINK#{token_hash}"}},
                UpdateExpression="SET revoked_ms = :t", ExpressionAttributeValues={":t": {"N": str(revoked_ms)}})

    # SITE#site/APIKEY#hash (found by hash through the inverted index), SITE#site/AUDIT#ts#id
    def create_api_key(self, key: ApiKey) -> None:
        self._account_put(key, f"SITE#{key.site_id}", f"APIKEY#{key.key_hash}")

    @staticmethod
    def _api_key(item: dict) -> ApiKey:
        return ApiKey(**{name: item.get(name) for name in API_KEY_FIELDS})

    def get_api_key(self, key_hash: str) -> ApiKey | None:
        items = self._account_query("sk", f"APIKEY#{key_hash}", "SITE#")
        return self._api_key(items[0]) if items else None

    def list_api_keys(self, site_id: str) -> list[ApiKey]:
        keys = [self._api_key(i) for i in self._account_query("pk", f"SITE#{site_id}", "APIKEY#")]
        return sorted(keys, key=lambda k: (k.created_ms, k.key_hash))

    def update_api_key(self, key: ApiKey) -> None:
        changes = {"last_used_ms": key.last_used_ms, "expires_ms": key.expires_ms, "revoked_ms": key.revoked_ms}
        with self._errors():
            self.client.update_item(
                TableName=self.accounts_table, ConditionExpression="attribute_exists(pk)",
                Key={"pk": {"S": f"SITE#{key.site_id}"}, "sk": {"S": f"APIKEY#{key.key_hash}"}},
                UpdateExpression="SET " + ", ".join(f"{name} = :{name}" for name in changes),
                ExpressionAttributeValues=to_item({f":{name}": value for name, value in changes.items()}))

    def add_audit(self, entry: AuditEntry) -> None:
        self._account_put(entry, f"SITE#{entry.site_id}", f"AUDIT#{entry.ts_ms:015d}#{entry.entry_id}")

    def list_audit(self, site_id: str, limit: int = 100) -> list[AuditEntry]:
        with self._errors():
            items = self._query(TableName=self.accounts_table, ScanIndexForward=False, Limit=limit,
                                KeyConditionExpression="pk = :site AND begins_with(sk, :audit)",
                                ExpressionAttributeValues={":site": {"S": f"SITE#{site_id}"},
                                                           ":audit": {"S": "AUDIT#"}})
        return [AuditEntry(**{name: data[name] for name in AUDIT_FIELDS}) for data in map(from_item, items)]

    # SITE#site/FIRED#key (the key, taken once) and SITE#site/ALERT#fired_ms#key (the alert, in time
    # order), written together; details and deliveries as JSON (their figures may be floats).
    def add_alert(self, alert: Alert) -> bool:
        pk, new = f"SITE#{alert.site_id}", "attribute_not_exists(pk)"
        actions = [{"Put": {"TableName": self.accounts_table, "ConditionExpression": new,
                            "Item": to_item({"pk": pk, "sk": f"FIRED#{alert.key}", "fired_ms": alert.fired_ms})}},
                   {"Put": {"TableName": self.accounts_table, "ConditionExpression": new,
                            "Item": self._alert_item(alert)}}]
        for attempt in range(ATTEMPTS):
            with self._errors():
                try:
                    self.client.transact_write_items(TransactItems=actions)
                    return True
                except ClientError as exc:
                    reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
                    if _code(exc) != "TransactionCanceledException":
                        raise
                    if "ConditionalCheckFailed" in reasons:
                        return False  # another process added it
            time.sleep(0.05 * 2 ** attempt * random.random())  # a conflict with a concurrent add: again
        raise StoreError(f"dynamodb: alert {alert.key!r} could not be added after {ATTEMPTS} attempts")

    @staticmethod
    def _alert_item(alert: Alert) -> dict:
        record = {**asdict(alert), "details": json.dumps(alert.details), "deliveries": json.dumps(alert.deliveries)}
        return to_item({**record, "pk": f"SITE#{alert.site_id}", "sk": f"ALERT#{alert.fired_ms:015d}#{alert.key}"})

    def update_alert(self, alert: Alert) -> None:
        with self._errors():
            self.client.update_item(
                TableName=self.accounts_table, ConditionExpression="attribute_exists(pk)",
                Key=self._key(f"SITE#{alert.site_id}", f"ALERT#{alert.fired_ms:015d}#{alert.key}"),
                UpdateExpression="SET deliveries = :d",
                ExpressionAttributeValues={":d": {"S": json.dumps(alert.deliveries)}})

    def list_alerts(self, site_id: str, limit: int = 50) -> list[Alert]:
        with self._errors():
            items = self._query(TableName=self.accounts_table, ScanIndexForward=False, Limit=limit,
                                KeyConditionExpression="pk = :site AND begins_with(sk, :alert)",
                                ExpressionAttributeValues={":site": {"S": f"SITE#{site_id}"},
                                                           ":alert": {"S": "ALERT#"}})
        alerts = []
        for data in map(from_item, items):
            record = {name: data[name] for name in ALERT_FIELDS}
            alerts.append(Alert(**{**record, "details": json.loads(record["details"]),
                                   "deliveries": json.loads(record["deliveries"])}))
        return alerts
