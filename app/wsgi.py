"""The server's entry point (gunicorn app.wsgi:app): the app plus its retention schedule."""
from app import create_app
from app.ingest.enrich import warm_up
from app.retention import start_retention_thread

app = create_app()
warm_up()  # load the user-agent and bot patterns now, not on a visitor's first request
if app.config["RUN_RETENTION_THREAD"]:
    start_retention_thread(app)
