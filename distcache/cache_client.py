"""Legacy import path: ``from distcache.cache_client import CacheClient``."""
from __future__ import annotations

from .client import AsyncCacheClient, CacheClient, DecodeError, register  # noqa: F401

__all__ = ["CacheClient", "AsyncCacheClient", "DecodeError", "register"]
