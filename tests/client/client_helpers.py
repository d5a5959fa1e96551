"""Helpers for the client tests: the blocking adapter for the asyncio client,
client construction, threads, feature checks."""
from __future__ import annotations

import asyncio
import inspect
import threading
from typing import Any

from distcache import AsyncCacheClient, CacheClient


class Blocking:
    """Runs anything awaitable that ``target`` returns on ``loop``; wraps the
    helper objects it hands out (pipelines, locks, id generators) the same way."""

    def __init__(self, target: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._target = target
        self._loop = loop

    def _wrap(self, value: Any) -> Any:
        if inspect.isawaitable(value):
            value = self._loop.run_until_complete(value)
        if type(value).__module__.startswith("distcache.client.") and \
                type(value).__name__ in ("Pipeline", "Lock", "IdGenerator"):
            return Blocking(value, self._loop)
        return value

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            result = self._wrap(attr(*args, **kwargs))
            if name == "cached":  # a decorator: wrap what it decorates
                return lambda fn: self._wrap_fn(result(fn))
            return result
        return call

    def _wrap_fn(self, fn: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            return self._wrap(fn(*args, **kwargs))
        return call

    def __len__(self) -> int:
        return len(self._target)

    def __enter__(self) -> Any:
        if hasattr(self._target, "__aenter__"):
            self._loop.run_until_complete(self._target.__aenter__())
        else:
            self._target.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if hasattr(self._target, "__aexit__"):
            self._loop.run_until_complete(self._target.__aexit__(*exc))
        else:
            self._target.__exit__(*exc)


def make_client(flavour: str, servers: Any, **options: Any) -> Any:
    """A CacheClient, or an AsyncCacheClient behind the Blocking adapter."""
    if flavour == "sync":
        return CacheClient(servers, **options)
    loop = asyncio.new_event_loop()
    client = Blocking(AsyncCacheClient(servers, **options), loop)
    client.loop = loop
    return client


def close_client(client: Any) -> None:
    client.close()
    loop = getattr(client, "loop", None)
    if loop is not None:
        loop.close()


def run_threads(target: Any, args_list: Any, timeout: float = 60.0) -> None:
    """Run ``target(*args)`` for each args in threads at once and wait for all."""
    threads = [threading.Thread(target=target, args=args) for args in args_list]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "threads still running"


def supports_watch(client: Any) -> bool:
    from distcache.client.errors import ResponseError
    try:
        client.execute("UNWATCH")
        return True
    except ResponseError:
        return False
