"""Error counters INFO reports (total_error_replies, errorstats); nothing runs
until an error is sent. (Byte counters are left out: see docs/benchmarks.md.)"""
from __future__ import annotations

from typing import Any


def count_error(server: Any, text: str) -> None:
    """INFO's error counters (total_error_replies, errorstats) for one error reply:
    errorstats counts by the error's first word (ERR, WRONGTYPE, OOM...)."""
    server.stats["total_error_replies"] += 1
    server.error_stats[text.split(" ", 1)[0]] += 1
