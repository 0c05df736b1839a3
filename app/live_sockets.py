"""Live push on AWS: the realtime page's widgets over an API Gateway WebSocket API, sent once the
stream function has folded a batch of the site's events. The page polls while its socket is down
(static/js/dashboard.js), as it does on the single box while its event stream is down
(app/live_push.py).

1. The page asks the web app for a ticket (`GET /sites/<id>/live/socket` behind the member's
   login, or `/share/<token>/live/socket` through a public link): the socket's URL with a
   `ticket` naming the site, its viewer and the page's language, signed with the session key,
   good for TICKET_MAX_AGE_S.
2. It connects. The socket function's $connect checks the ticket and that its viewer may still
   see the site (a member still is, a link is not revoked), then keeps the connection
   (`store.add_live_socket`); $disconnect forgets it.
3. After each batch the stream function pushes the watched sites it folded (`push`): at most
   once every PUSH_EVERY_MS per site however many functions fold it (`store.claim_live_push`),
   rendered once per language its sockets speak and posted to each socket. A socket older than MAX_SOCKET_MS is closed
   instead: the page reconnects with a new ticket, through the access checks again, so a
   removed member or a revoked link stops seeing the site. A connection API Gateway no longer
   has is forgotten.

The snapshot is the same for every viewer of a language (it holds figures, no link), so one
render serves members and public links alike. This module holds no boto3: the Lambda entry points post.
"""
from __future__ import annotations

from typing import Callable, Iterable

from itsdangerous import BadData, URLSafeTimedSerializer

from app.auth.users import role_on
from app.i18n import DEFAULT_LANGUAGE, LANGUAGES
from app.store.base import LiveSocket, Store

TICKET_SALT = "liveinsight.live-socket"
TICKET_MAX_AGE_S = 60  # time enough to connect: every (re)connection asks for a new one
PUSH_EVERY_MS = 1_000  # a site's snapshot at most this often (each costs its reads)
MAX_SOCKET_MS = 300_000  # then the page connects again, through the checks (as the event streams)

Render = Callable[[str, str], "str | None"]  # a site's snapshot in a language (None: the site is gone)
Send = Callable[[list[str], str], list[str]]  # post data to connections -> those gone
Close = Callable[[list[str]], list[str]]  # close connections -> those already gone


LINK_VIEWER = "link:"  # + a public link's token hash: the viewer a ticket names for a link


def ticket(secret_key: str, site_id: str, viewer: str, language: str) -> str:
    """A ticket for `viewer` (a member's user id, or LINK_VIEWER + a public link's token hash),
    whose page speaks `language`."""
    return URLSafeTimedSerializer(secret_key, salt=TICKET_SALT).dumps([site_id, viewer, language])


def ticket_holder(keys: list[str], token: str) -> tuple[str, str, str] | None:
    """(site id, viewer, language) of a ticket signed with one of `keys` within TICKET_MAX_AGE_S,
    or None."""
    try:
        site_id, viewer, language = URLSafeTimedSerializer(keys, salt=TICKET_SALT).loads(
            token, max_age=TICKET_MAX_AGE_S)
    except (BadData, ValueError, TypeError):
        return None
    return str(site_id), str(viewer), str(language) if language in LANGUAGES else DEFAULT_LANGUAGE


def may_see(store: Store, site_id: str, viewer: str) -> bool:
    """Whether a member is still one, or a public link of the site is not revoked."""
    if viewer.startswith(LINK_VIEWER):  # the site's links (few): what its function may read
        hashed = viewer.removeprefix(LINK_VIEWER)
        return any(link.token_hash == hashed and link.revoked_ms is None for link in store.list_public_links(site_id))
    user = store.get_user(viewer)
    return user is not None and role_on(store, user, site_id) is not None


def connect(store: Store, keys: list[str], connection_id: str, token: str, now_ms: int) -> bool:
    """$connect: keep the connection if its ticket is good and its viewer may see the site."""
    holder = ticket_holder(keys, token)
    if holder is None:
        return False
    site_id, viewer, language = holder
    if not may_see(store, site_id, viewer) or store.get_site(site_id) is None:
        return False
    store.add_live_socket(LiveSocket(connection_id, site_id, viewer, now_ms, language))
    return True


def push(store: Store, site_ids: Iterable[str], render: Render, send: Send, close: Close, now_ms: int) -> dict:
    """Push each watched site's snapshot to its sockets; what was done, counted."""
    done = {"sites": 0, "sent": 0, "closed": 0, "gone": 0}
    for site_id in sorted(set(site_ids)):
        sockets = store.live_sockets(site_id)
        if not sockets or not store.claim_live_push(site_id, now_ms, PUSH_EVERY_MS):
            continue
        stale = [s.connection_id for s in sockets if now_ms - s.connected_ms >= MAX_SOCKET_MS]
        fresh: dict[str, list[str]] = {}  # language -> its sockets
        for s in sockets:
            if now_ms - s.connected_ms < MAX_SOCKET_MS:
                fresh.setdefault(s.language, []).append(s.connection_id)
        snapshots = {language: render(site_id, language) for language in sorted(fresh)}
        for language in [language for language, html in snapshots.items() if html is None]:  # the site is gone
            stale += fresh.pop(language)
        gone, sent = close(stale) if stale else [], 0
        for language, connections in fresh.items():
            gone += send(connections, " ".join(snapshots[language].split()))  # white space collapsed, as shown
            sent += len(connections)
        for connection_id in gone:
            store.drop_live_socket(connection_id)
        done["sites"] += 1 if sent else 0
        done["sent"] += sent
        done["closed"] += len(stale)
        done["gone"] += len(gone)
    return done
