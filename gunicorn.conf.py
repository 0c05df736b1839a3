"""gunicorn's settings for LiveInsight, read by gunicorn from the directory it starts in: the
same for `make run`, the bench, the tests that start a real server, and a production service.
The address and the number of workers come from the command line (make run's HOST, PORT,
WORKERS)."""

wsgi_app = "app.server:application"

# The asyncio worker reads each request whole before the app sees it: a slow or stalled client
# costs a coroutine and a socket, not a worker (app/asgi_bridge.py); a body that stops arriving
# is dropped after `timeout` seconds. (This worker does not apply worker_connections.)
worker_class = "asgi"
timeout = 30
# One request per connection, as sync workers serve: each new connection goes to a worker that
# is not busy, so the two share the load. A kept-alive connection stays with the worker that
# accepted it, and in the bench 16 of them all went to one worker while the other idled.
keepalive = 0

# The app trusts X-Forwarded-For/-Proto/-Host itself, from exactly LIVEINSIGHT_PROXIES hops
# (app/security.py). gunicorn would also take the scheme from any client on 127.0.0.1 by
# default: trust nobody here, so that one setting decides.
forwarded_allow_ips = ""
secure_scheme_headers: dict = {}

# gunicorn 27 opens a control socket at ~/.gunicorn/gunicorn.ctl: one path for every instance
# the same user runs on the machine. LiveInsight does not use it.
control_socket_disable = True


def post_worker_init(worker):
    """The live push hub ends its streams once this worker is told to stop: a restart would
    otherwise wait graceful_timeout for the open realtime pages (app/live_push.py)."""
    from app.server import hub
    hub.running = lambda: worker.alive
