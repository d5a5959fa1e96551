"""The distcache client: native Python values over the Redis protocol.

>>> from distcache import CacheClient
>>> client = CacheClient("127.0.0.1:2050")
>>> client.set("answer", 42); client.incr("answer")
True
43

``AsyncCacheClient`` has the same methods as coroutines. Values round-trip
with their exact type (see ``docs/values.md``); keys are str, bytes or int.
"""
from __future__ import annotations

from .errors import (AuthenticationError, CacheError, ConnectionError, DecodeError,
                     ResponseError, ServerDown, TimeoutError)
from .serde import register

__all__ = ["CacheClient", "AsyncCacheClient", "register", "CacheError", "ConnectionError",
           "TimeoutError", "AuthenticationError", "ServerDown", "ResponseError", "DecodeError"]


def __getattr__(name: str):  # lazy: importing the asyncio machinery costs time
    if name == "CacheClient":
        from .sync import CacheClient
        return CacheClient
    if name == "AsyncCacheClient":
        from .aio import AsyncCacheClient
        return AsyncCacheClient
    raise AttributeError(f"module 'distcache.client' has no attribute {name!r}")
