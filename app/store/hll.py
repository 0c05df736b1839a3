"""Unique-visitor sketches: HyperLogLog from Apache DataSketches, kept per day and value.

Sketches merge without double counting, so visitors over any range of days are the union of
the daily sketches, not the sum of daily uniques. lg_k = 14 gives a relative standard error
of about 0.8 % for large counts; below a few hundred visitors the sketch keeps exact
coupons, so small counts are exact (measured in tests/test_hll.py).
"""
from __future__ import annotations

from typing import Iterable

# The compiled core of Apache DataSketches (`datasketches` re-exports it): the package's own
# __init__ also loads density-sketch kernels that need numpy, which the Lambda package leaves out.
import _datasketches as datasketches

LG_K = 14
# HLL_4 packs the same registers into half the bytes of HLL_8 (8 KB at most): the same
# accuracy, and half the bytes written each time a busy day's sketch changes.
_TYPE = datasketches.tgt_hll_type.HLL_4


def add_visitors(sketch: bytes | None, user_ids: Iterable[str]) -> bytes:
    """A serialised sketch holding what `sketch` held plus `user_ids`."""
    hll = datasketches.hll_sketch.deserialize(sketch) if sketch else datasketches.hll_sketch(LG_K, _TYPE)
    for user_id in user_ids:
        hll.update(user_id)
    return hll.serialize_compact()


class Union:
    """Sketches merged one at a time, so a month of days need not be held at once."""

    def __init__(self):
        self._union = datasketches.hll_union(LG_K)

    def add(self, sketch: bytes) -> None:
        self._union.update(datasketches.hll_sketch.deserialize(sketch))

    def result(self) -> bytes:
        return self._union.get_result(_TYPE).serialize_compact()


def merge(sketches: Iterable[bytes]) -> bytes:
    union = Union()
    for sketch in sketches:
        union.add(sketch)
    return union.result()


def count_visitors(sketches: Iterable[bytes]) -> int:
    """Distinct visitors in the union of the sketches."""
    union = datasketches.hll_union(LG_K)
    empty = True
    for sketch in sketches:
        union.update(datasketches.hll_sketch.deserialize(sketch))
        empty = False
    return 0 if empty else round(union.get_estimate())
