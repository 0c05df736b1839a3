"""What gunicorn serves (gunicorn.conf.py): in each server process, the app, the background work
one process leads (the aggregator and the retention job, app/aggregation.py), and the app behind
the ASGI bridge that gunicorn's asyncio worker calls (app/asgi_bridge.py)."""
from app import create_app
from app.aggregation import Background
from app.asgi_bridge import ASGIBridge
from app.ingest.enrich import warm_up

app = create_app()
warm_up()  # load the user-agent and bot patterns now, not on a visitor's first request
background = Background(app).start()
application = ASGIBridge(app, max_body=app.config["MAX_CONTENT_LENGTH"])
