"""The server's entry point (gunicorn app.wsgi:app): the app plus its retention schedule."""
from app import create_app
from app.retention import start_retention_thread

app = create_app()
if app.config["RUN_RETENTION_THREAD"]:
    start_retention_thread(app)
