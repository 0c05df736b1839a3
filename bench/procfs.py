"""What /proc says of one process, for the bench's figures: its memory and its CPU time."""
from __future__ import annotations

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def memory_kb(pid: int, field: str = "VmRSS", source: str = "status") -> int | None:
    """A memory figure in kB: VmRSS from /proc/PID/status, or Pss from /proc/PID/smaps_rollup
    (shared pages divided among their users); None when the process or the field is gone."""
    try:
        lines = Path(f"/proc/{pid}/{source}").read_text().splitlines()
    except OSError:
        return None
    return next((int(line.split()[1]) for line in lines if line.startswith(field + ":")), None)


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process used so far; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14, 15)
    except (OSError, IndexError, ValueError):
        return 0.0
