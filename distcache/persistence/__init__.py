"""Persistence: the append-only log, snapshots and crash recovery.

See docs/persistence.md for the data directory layout, the file formats and
what each ``appendfsync`` setting guarantees.
"""
from __future__ import annotations

from .manager import Persistence, install  # noqa: F401
