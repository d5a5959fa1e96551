"""Value types that need more than a builtin container (the sorted set)."""
from __future__ import annotations

from .zset import ZSet  # noqa: F401
