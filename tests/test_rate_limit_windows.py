"""The in-memory fixed-window counters of app/limits.py (the single box's default)."""
from limits import parse_many

from app import limits as rate_limits


def test_counts_in_memory_start_again_each_window():
    now = 1_000_020.0
    windows, [per_minute] = rate_limits.MemoryWindows(), parse_many("2 per minute")
    assert [windows.hit(per_minute, "ingest", "a", now)[0] for _ in range(3)] == [True, True, False]
    assert windows.hit(per_minute, "ingest", "b", now) == (True, 1_000_020.0 // 60 * 60 + 60)  # another key
    now += 60  # the next window
    assert windows.hit(per_minute, "ingest", "a", now)[0] is True
    assert sum(len(counts) for counts in windows.counts.values()) == 1  # the last window's counts are gone
