"""What gunicorn serves (gunicorn.conf.py): in each server process, the app, the background work
one process leads (the aggregator, the retention job and the alerts, app/aggregation.py), and
the app behind the ASGI bridge that gunicorn's asyncio worker calls (app/asgi_bridge.py), with
the hub that pushes the realtime page's widgets to its open streams (app/live_push.py)."""
from functools import partial

from app import create_app
from app.aggregation import Background
from app.asgi_bridge import ASGIBridge
from app.dashboard.views import live_snapshot_for
from app.ingest.enrich import warm_up
from app.live_push import LiveHub

app = create_app({"LIVE_PUSH": True})
warm_up()  # load the user-agent and bot patterns now, not on a visitor's first request
background = Background(app).start()
hub = LiveHub(app.extensions["liveinsight.store"], partial(live_snapshot_for, app))
application = ASGIBridge(app, max_body=app.config["MAX_CONTENT_LENGTH"], hub=hub)
