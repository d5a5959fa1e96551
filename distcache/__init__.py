"""distcache: a pure-Python distributed cache that speaks the Redis protocol."""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "CacheServer", "CacheClient", "AsyncCacheClient", "register",
           "DecodeError"]


def __getattr__(name: str) -> Any:
    # Imported lazily so that ``import distcache`` stays cheap and the client
    # does not load the server (and vice versa).
    if name == "CacheServer":
        from .server import CacheServer
        return CacheServer
    if name in ("CacheClient", "AsyncCacheClient", "register", "DecodeError"):
        from . import client
        return getattr(client, name)
    raise AttributeError(f"module 'distcache' has no attribute {name!r}")
