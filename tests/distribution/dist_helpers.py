"""Polling helpers for the distribution tests (deadlines, no fixed sleeps)."""
from __future__ import annotations

import asyncio
import time
from typing import Callable


def wait_until(predicate: Callable[[], object], timeout: float = 10.0,
               step: float = 0.01) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


async def async_wait_until(predicate: Callable[[], object], timeout: float = 10.0,
                           step: float = 0.01) -> bool:
    """:func:`wait_until` that lets the event loop run meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step)
    return bool(predicate())
