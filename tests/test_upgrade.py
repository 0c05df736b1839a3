"""Upgrading the single box: a store made and filled by a previous release (its code checked out
of this repository's history into a temporary folder, run with its own commands) is opened by
this release as deploy/liveinsight.service opens it (`init-db` first, which upgrades the schema
after copying the file), and every report answers what the previous release answered."""
from __future__ import annotations

import datetime
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from tests.server import ROOT

# Releases a self-hoster may be running: the last one before the traffic sources changed the
# schema (9 -> 10), and the one before production on one box.
PREVIOUS_RELEASES = {
    "schema 9": "a777679146a86a894b3df1e9ba6d0ebfc43f879e",
    "schema 10": "7941436b83dc6ed5a390991b710fe00d6e37fcb3",
}


def checkout(commit: str, folder: Path) -> Path:
    """The code of `commit`, from this repository's history (git archive), in `folder`."""
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("the upgrade test needs this checkout's git history (git and .git)")
    found = subprocess.run([git, "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}"],
                           capture_output=True, text=True, timeout=30)
    if found.returncode != 0:
        pytest.skip(f"commit {commit} is not in this clone (a shallow clone?): fetch the history to run it")
    archive = subprocess.run([git, "-C", str(ROOT), "archive", "--format=tar", found.stdout.strip()],
                             capture_output=True, timeout=120, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def flask(code: Path, env: dict, *args: str) -> str:
    """A command of the release whose code is in `code` (bin/liveinsight, with its code first on the path)."""
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "app", *args], cwd=code,
                          env={**env, "PYTHONPATH": str(code)}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def reports(code: Path, env: dict, *args: str) -> dict:
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "upgrade_reports.py"), *args], cwd=code,
                          env={**env, "PYTHONPATH": str(code)}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


# Sentences written for a person, which a release may reword: the live feed's "what" ("Purchase
# (€99.00) on /pricing", "99.00 EUR" before sums were written as the reader's language writes
# them). They must still be there; the fields beside them (type, path, name...) are compared.
WORDED = {"what"}
# Figures a release has since defined otherwise, so that the previous one's are a floor rather
# than a match. Schema 13 (December 2026): the live widgets count a visitor once, on their
# latest event's page, by whole minutes (one seen up to a minute before a window still counts).
LIVE = ("current_visitors", "live_pages", "live_sources")


def assert_live_kept(before: dict, after: dict) -> None:
    """The upgraded store still counts the visitors live before it (the migration placed them)."""
    for window in ("last_5_minutes", "last_30_minutes"):
        assert after["current_visitors"][window] >= before["current_visitors"][window], window
    for widget in ("live_pages", "live_sources"):
        assert after[widget] or not before[widget], widget
    durations = [report["conversions"].pop("active_visit_duration_s") for report in (before, after)]
    assert durations[1] is not None or durations[0] is None
    for name in LIVE:
        before.pop(name), after.pop(name)


def assert_kept(before, after, where: str = "") -> None:
    """Everything the previous release answered is answered the same (a new release may add
    fields; it may not change or drop one)."""
    if isinstance(before, dict):
        assert isinstance(after, dict), where
        for key, value in before.items():
            assert key in after, f"{where}.{key} is gone"
            if key in WORDED:
                assert isinstance(after[key], str) and after[key], f"{where}.{key} is empty"
                continue
            assert_kept(value, after[key], f"{where}.{key}")
    elif isinstance(before, list):
        assert isinstance(after, list) and len(after) == len(before), f"{where}: {before} -> {after}"
        for n, (old, new) in enumerate(zip(before, after)):
            assert_kept(old, new, f"{where}[{n}]")
    else:
        assert after == before, f"{where}: {before!r} -> {after!r}"


@pytest.mark.parametrize("release", PREVIOUS_RELEASES)
def test_a_store_of_a_previous_release_reads_the_same_after_the_upgrade(tmp_path, release):
    old_code = checkout(PREVIOUS_RELEASES[release], tmp_path / "previous")
    state = tmp_path / "state"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "LIVEINSIGHT_INSTANCE": str(state)}

    # The previous release makes and fills the store: the demo site (its goals, 3 days of traffic
    # through its pipeline, folded) and an API key.
    flask(old_code, env, "demo-setup", "--days", "3")
    secret = flask(old_code, env, "create-api-key", "demo", "upgrade test").strip().splitlines()[-1]
    now = int(time.time() * 1000)
    today = datetime.datetime.fromtimestamp(now / 1000, datetime.timezone.utc).date()
    period = (str(today - datetime.timedelta(days=3)), str(today))
    before = reports(old_code, env, "demo", secret, str(now), *period)
    assert before["all breakdowns"]["summary"]["metrics"]["pageviews"]["value"] > 500  # it has traffic to compare

    # This release starts as its service does: init-db upgrades (after a copy), then it serves.
    flask(ROOT, env, "init-db")
    after = reports(ROOT, env, "demo", secret, str(now), *period)
    assert_live_kept(before["realtime"], after["realtime"])
    assert_kept(before, after)
    copies = list(state.glob("liveinsight.db.schema-*.backup"))  # both are older than alerts' schema 11
    assert [c.name.split(".")[2].rsplit("-", 1)[0] for c in copies] == [release.replace(" ", "-")]
