"""The visitor tracker's build: size budget, checked-in minified copy up to date, valid JS."""

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.filterwarnings("error")

TRACKER = Path(__file__).resolve().parent.parent / "tracker"
SOURCE = TRACKER / "liveinsight.js"
MINIFIED = TRACKER / "dist" / "liveinsight.min.js"
BUILD = TRACKER / "build.sh"
SIZE_BUDGET = 1500  # bytes, minified + gzipped


def gzipped_size(path):
    return len(gzip.compress(path.read_bytes(), compresslevel=9, mtime=0))


def test_minified_tracker_is_under_the_size_budget(record_property):
    size = gzipped_size(MINIFIED)
    record_property("tracker_gzip_bytes", size)
    print(f"tracker: {MINIFIED.stat().st_size} bytes minified, {size} bytes gzipped (budget {SIZE_BUDGET})")
    assert size < SIZE_BUDGET, f"tracker is {size} bytes gzipped, budget is {SIZE_BUDGET}"


def test_checked_in_minified_tracker_is_up_to_date(tmp_path):
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("npm/node not on PATH: cannot rebuild tracker/dist/liveinsight.min.js to compare")
    fresh = tmp_path / "liveinsight.min.js"
    result = subprocess.run(
        ["bash", str(BUILD), str(fresh)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"tracker/build.sh failed:\n{result.stdout}\n{result.stderr}"
    assert fresh.read_bytes() == MINIFIED.read_bytes(), (
        "tracker/dist/liveinsight.min.js is stale: run tracker/build.sh and commit the result"
    )


@pytest.mark.parametrize("path", [SOURCE, MINIFIED], ids=["source", "minified"])
def test_tracker_parses(path):
    if shutil.which("node") is None:
        pytest.skip("node not on PATH: cannot syntax-check the tracker")
    result = subprocess.run(["node", "--check", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
