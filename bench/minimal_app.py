"""The yardstick: the least a Flask endpoint can do (answer 202 to a POST), served by the same
gunicorn settings as LiveInsight. Ingestion throughput is reported as a ratio to it, which the
machine's drift from one hour to the next changes far less than it changes either figure."""
from flask import Flask, request

from app.asgi_bridge import ASGIBridge

app = Flask(__name__)


@app.route("/", methods=["GET", "POST"])
def accept():
    return ("", 202) if request.method == "POST" else ("up", 200)


application = ASGIBridge(app, max_body=256 * 1024)  # as LiveInsight is served (app/server.py)
