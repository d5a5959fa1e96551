"""Error counters INFO reports (total_error_replies, errorstats); they cost
nothing until an error is sent.

INFO has no byte counters (total_net_input_bytes...): two additions per read
and write cost ~940 instructions per -P 1 read, 4.6% of a GET
(bench/instructions.py), more than they are worth here."""
from __future__ import annotations

from typing import Any


def count_error(server: Any, text: str) -> None:
    """INFO's error counters (total_error_replies, errorstats) for one error reply:
    errorstats counts by the error's first word (ERR, WRONGTYPE, OOM...)."""
    server.stats["total_error_replies"] += 1
    server.error_stats[text.split(" ", 1)[0]] += 1
