"""GET /healthz: the server and its store answer (for a proxy or monitoring), saying nothing more."""
from app.store.base import StoreError


def test_healthz_says_ok_when_the_store_answers(anon_client):
    response = anon_client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


def test_healthz_is_503_without_detail_when_the_store_does_not_answer(anon_client, store, monkeypatch):
    def down():
        raise StoreError("sqlite: unable to open database file /secret/path.db")
    monkeypatch.setattr(store, "check", down)
    response = anon_client.get("/healthz")
    assert response.status_code == 503
    assert response.json == {"status": "error", "message": "the store does not answer"}
