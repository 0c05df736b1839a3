"""The server's entry point (gunicorn app.wsgi:app): the app, and in each server process the
background work one of them leads: the aggregator and the retention job (app/aggregation.py)."""
from app import create_app
from app.aggregation import Background
from app.ingest.enrich import warm_up

app = create_app()
warm_up()  # load the user-agent and bot patterns now, not on a visitor's first request
background = Background(app).start()
