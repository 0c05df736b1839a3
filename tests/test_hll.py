"""Unique-visitor sketches: measured error at 100, 10,000 and 1,000,000 visitors."""
import pytest

from app.store.hll import LG_K, add_visitors, count_visitors, merge


@pytest.mark.parametrize("visitors", [1, 2, 17, 50, 99])
def test_small_counts_are_exact(visitors):
    assert count_visitors([add_visitors(None, (f"visitor-{i}" for i in range(visitors)))]) == visitors


@pytest.mark.parametrize("visitors", [100, 10_000, 1_000_000])
def test_error_is_within_one_percent(visitors, record_property):
    # Ten daily sketches of overlapping visitors, as a month of returning traffic would make.
    days = [add_visitors(None, (f"visitor-{(i * 7 + d * visitors // 20) % visitors}" for i in range(visitors // 2)))
            for d in range(10)]
    truth = len({(i * 7 + d * visitors // 20) % visitors for d in range(10) for i in range(visitors // 2)})
    estimate = count_visitors(days)
    error = abs(estimate - truth) / truth
    record_property(f"hll_error_{visitors}", error)
    print(f"lg_k={LG_K}: {truth} distinct visitors, estimate {estimate}, error {100 * error:.3f}%")
    assert error <= 0.01


def test_union_does_not_double_count():
    monday = add_visitors(None, ["a", "b", "c"])
    tuesday = add_visitors(None, ["b", "c", "d"])
    assert count_visitors([monday, tuesday]) == 4
    assert count_visitors([merge([monday, tuesday])]) == 4
    assert count_visitors([add_visitors(monday, ["a", "e"])]) == 4
    assert count_visitors([]) == 0
