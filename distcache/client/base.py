"""Options shared by both flavours: servers, serializer, timeouts, failover.

Where the servers come from when none are given, first match wins:

1. ``DISTCACHE_SERVERS`` (``"h1:2050,h2:2050 weight=2"``);
2. the ``server_pool`` line of the redis.conf-style file named by
   ``DISTCACHE_CONFIG``: ``server_pool h1:2050 h2:2050 weight=2``;
3. ``127.0.0.1:2050``.
"""
from __future__ import annotations

import os
import random
import shlex
import ssl as _ssl
from typing import Any, Callable, Dict, List, Optional

from ..protocol import ReplyError
from .commands import SLEEP, CommandsMixin
from .connection import auth_error
from .errors import ConnectionError, ResponseError
from .localcache import make_local_cache
from .ring import KetamaRing, ServerSpec
from .serde import make_serializer
from .shards import SHARD_OPTIONS, Shard, ShardMap, parse_shards

__all__ = ["BaseClient", "resolve_servers", "resolve_shards", "run_sync", "DEFAULT_SERVER"]

DEFAULT_SERVER = "127.0.0.1:2050"
FAILOVER_POLICIES = ("next", "error")


def _server_pool_from_file(path: str) -> Optional[str]:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            parts = line.strip().split(None, 1)
            if len(parts) == 2 and parts[0].lower() in ("server_pool", "server-pool"):
                return parts[1]
    return None


def _split_pool(text: str) -> List[str]:
    """``"h1:1 h2:2 weight=2 replicas=h2b:2"`` or ``"h1:1, h2:2 weight=2"`` -> one
    spec per shard."""
    if "," in text:
        return [part.strip() for part in text.split(",") if part.strip()]
    specs: List[str] = []
    for word in shlex.split(text):
        if word.lower().startswith(("weight=", "replica=") + SHARD_OPTIONS) and specs:
            specs[-1] += " " + word
        else:
            specs.append(word)
    return specs


def resolve_shards(servers: Any = None,
                   environ: Optional[Dict[str, str]] = None) -> List[Shard]:
    """The pool (one :class:`Shard` per entry) for ``servers``, or the
    environment's default."""
    if servers is not None:
        parsed = parse_shards(servers)
        if not parsed:
            raise ValueError("empty server list")
        return parsed
    env = os.environ if environ is None else environ
    if env.get("DISTCACHE_SERVERS", "").strip():
        return parse_shards(env["DISTCACHE_SERVERS"])
    path = env.get("DISTCACHE_CONFIG")
    if path:
        pool = _server_pool_from_file(path)
        if pool:
            return parse_shards(_split_pool(pool))
    return parse_shards(DEFAULT_SERVER)


def resolve_servers(servers: Any = None,
                    environ: Optional[Dict[str, str]] = None) -> List[ServerSpec]:
    """The primaries of :func:`resolve_shards`."""
    return [shard.primary for shard in resolve_shards(servers, environ)]


def run_sync(coro: Any) -> Any:
    """Run a coroutine that never suspends (the sync flavour's I/O is blocking).

    The drivers below are written once as coroutines; the sync client runs
    them with this, the asyncio client awaits them.
    """
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise RuntimeError("a sync client operation tried to suspend")


async def _value(value: Any) -> Any:
    return value


class BaseClient(CommandsMixin):
    """Construction and the plan drivers common to both flavours.

    A flavour provides ``_finish(coro)`` (run it, or return it to be
    awaited), ``_io_call(fn, args)`` (call, awaiting if needed), ``_sleep``,
    ``_round_trip(requests)`` and pools with ``get_dedicated``/``put_dedicated``.
    """

    def __init__(self, servers: Any = None, *, password: Optional[str] = None,
                 username: Optional[str] = None, db: int = 0,
                 ssl: Optional[_ssl.SSLContext] = None, connect_timeout: float = 5.0,
                 timeout: float = 5.0, retries: int = 2, retry_on_timeout: bool = False,
                 serializer: Any = "auto",
                 compress_threshold: Optional[int] = None, failover: str = "next",
                 failover_ttl: float = 60, ignore_errors: bool = False,
                 health_interval: Optional[float] = 1.0, failure_threshold: int = 2,
                 on_server_state: Optional[Callable[[str, str, str], Any]] = None,
                 max_connections: Optional[int] = None, parser: str = "auto",
                 local_cache: Any = None,
                 read_from_replicas: bool = False, sentinels: Any = None,
                 services: Any = None, failover_timeout: float = 15.0,
                 sentinel_password: Optional[str] = None) -> None:
        if failover not in FAILOVER_POLICIES:
            raise ValueError(f"failover must be one of {FAILOVER_POLICIES}, not {failover!r}")
        if ssl is not None and not isinstance(ssl, _ssl.SSLContext):
            raise TypeError("ssl must be an ssl.SSLContext (e.g. ssl.create_default_context())")
        self._sentinel: Any = None
        if sentinels is not None or services is not None:
            if servers is not None:
                raise ValueError("give either servers or sentinels and services, not both")
            from .sentinel import SentinelWatcher
            self._sentinel = SentinelWatcher(sentinels or [], list(services or []),
                                             timeout=connect_timeout, password=sentinel_password)
            shards = self._sentinel.discover()
        else:
            shards = resolve_shards(servers)
        # Plain pools (no replicas, no names) keep the old, leaner routing.
        self._shards: Optional[ShardMap] = None
        if read_from_replicas or any(s.replicas or s.placement is not s.primary
                                     for s in shards):
            self._shards = ShardMap(shards, read_from_replicas, max(0.0, failover_timeout))
        #: The current primaries (broadcasts go there); _all_servers adds replicas.
        self._servers: List[ServerSpec] = [s.primary for s in shards]
        self._all_servers: List[ServerSpec] = (
            self._shards.all_servers() if self._shards else list(self._servers))
        self._ring = self._shards.ring if self._shards else KetamaRing(self._servers)
        self._serializer = make_serializer(serializer, compress_threshold)
        self._dumps = self._serializer.dumps
        self._loads = self._serializer.loads
        self._retries = max(0, int(retries))
        self._retry_on_timeout = retry_on_timeout
        self._failover = failover
        self._failover_ttl = max(1, int(failover_ttl))
        self._ignore_errors = bool(ignore_errors)
        self._health_interval = health_interval
        self._failure_threshold = failure_threshold
        self._on_server_state = on_server_state
        self._conn_kwargs = dict(password=password, username=username, db=int(db),
                                 ssl_context=ssl, connect_timeout=connect_timeout,
                                 timeout=timeout, parser=parser)
        self._max_connections = max_connections
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._monitor: Any = None
        self._closed = False
        self._local = make_local_cache(local_cache)
        self._listeners: Dict[ServerSpec, Any] = {}

    def _state_changed(self, server: ServerSpec, old: str, new: str) -> None:
        # Connections made before a crash or restart are dead: start afresh.
        self._pools[server].close_idle()
        if self._shards is not None:
            self._shards.mark(server, new)
        if self._on_server_state is not None:
            self._on_server_state(server.address, old, new)

    def _monitor_kwargs(self) -> Dict[str, Any]:
        # A ping gets at least half a second (a busy host is not a dead server)
        # but never more than connect_timeout.
        interval = self._health_interval or 1.0
        return dict(interval=interval, failure_threshold=self._failure_threshold,
                    timeout=min(self._connect_timeout, max(interval, 0.5)),
                    on_state_change=self._state_changed)

    def _start_sentinel(self) -> None:
        if self._sentinel is not None:
            self._sentinel.start(self._switch_primary)

    def _switch_primary(self, service: str, new: ServerSpec) -> None:
        """Sentinel promoted ``new``: writes of that shard go there from now on."""
        shard = self._shards.switch(service, new, self._all_servers)  # type: ignore[union-attr]
        if shard is None:
            return
        if shard.primary not in self._pools:  # not a replica we knew of
            self._pools[shard.primary] = self._make_pool(shard.primary)
            self._all_servers.append(shard.primary)
        # Rebuilt, not mutated: other threads may be iterating the old list.
        self._servers = [s.primary for s in self._shards.shards]  # type: ignore[union-attr]

    def _stop_sentinel(self) -> None:
        if self._sentinel is not None:
            self._sentinel.stop()

    def _wants_monitor(self) -> bool:
        # One server has nowhere to fail over to: errors are simply raised
        # (or ignored), so no thread/task is spent watching it.
        return bool(self._health_interval) and len(self._all_servers) > 1

    # -- drivers of the plans written in CommandsMixin and recipes -------------------
    def _done(self, value: Any) -> Any:
        return self._finish(_value(value))

    def _run(self, plan: Any, finish: Callable[[Any], Any]) -> Any:
        return self._finish(self._run_plan(plan, finish))

    def _drive(self, gen: Any) -> Any:
        return self._finish(self._drive_steps(gen))

    def _transaction(self, key: bytes, gen: Any) -> Any:
        return self._finish(self._transaction_steps(key, gen))

    async def _run_plan(self, plan: Any, finish: Callable[[Any], Any]) -> Any:
        """Request plans yield ``{server: [cmd...]}`` (sent to all servers at
        once) or a float (seconds to sleep)."""
        replies: Any = None
        while True:
            try:
                request = plan.send(replies)
            except StopIteration as stop:
                return finish(stop.value)
            if request.__class__ is float:
                await self._io_call(self._sleep, (request,))
                replies = None
            else:
                replies = await self._io_call(self._round_trip, (request,))

    async def _drive_steps(self, gen: Any) -> Any:
        """Compound plans yield ``(callable, args)`` or ``(SLEEP, seconds)``; a
        step's exception is thrown into the plan (so it can release a lock)."""
        value: Any = None
        error: Optional[BaseException] = None
        while True:
            try:
                fn, args = gen.throw(error) if error is not None else gen.send(value)
            except StopIteration as stop:
                return stop.value
            value = error = None
            try:
                if fn is SLEEP:
                    await self._io_call(self._sleep, (args,))
                else:
                    value = await self._io_call(fn, args)
            except Exception as exc:
                error = exc

    async def _transaction_steps(self, key: bytes, gen: Any) -> Any:
        """Run a WATCH/MULTI plan (yielding command lists) on one dedicated
        connection to ``key``'s server."""
        try:
            server, _ = self._route(key)
        except ConnectionError:
            if self._ignore_errors:
                return False
            raise
        pool = self._pools[server]
        conn: Any = None
        try:
            conn = await self._io_call(pool.get_dedicated, ())
            replies: Any = None
            while True:
                try:
                    cmds = gen.send(replies)
                except StopIteration as stop:
                    pool.put_dedicated(conn)
                    return stop.value
                replies = await self._io_call(conn.request_many, (cmds,))
                for reply in replies:
                    if reply.__class__ is ReplyError:
                        raise auth_error(server.address, reply) or ResponseError(str(reply))
        except BaseException as exc:
            if conn is not None:
                conn.close()  # it may still be WATCHing
            if isinstance(exc, ConnectionError):
                self._note_failure(server, exc)
                if self._ignore_errors:
                    return False
            raise

    @staticmethod
    def _backoff(attempt: int) -> float:
        """Exponential backoff with full jitter: up to 50 ms, 100 ms, ... 1 s."""
        return random.uniform(0, min(1.0, 0.05 * 2 ** (attempt - 1)))

    def pipeline(self, replicas: int = 0, replicas_timeout: float = 1.0) -> Any:
        """Batch commands; one round trip per server on ``execute()``.

        With ``replicas=N`` each server written to also runs ``WAIT N``
        (up to ``replicas_timeout`` s); ``pipeline.confirmed`` then maps it to
        the number of replicas that confirmed.

        >>> with client.pipeline() as p:
        ...     p.set("a", 1).incr("a").get("a")
        ...     p.execute()
        [True, 2, 2]
        """
        from .pipeline import Pipeline
        return Pipeline(self, replicas, replicas_timeout)

    # -- recipes (see distcache.client.recipes) ---------------------------------
    def cached(self, ttl: Optional[float] = None, key: Any = None, **options: Any) -> Any:
        """Decorator memoizing a function in the cache, with stampede protection."""
        from .recipes import cached
        return cached(self, ttl=ttl, key=key, **options)

    def lock(self, name: Any, timeout: float = 10.0, **options: Any) -> Any:
        """A distributed lock (context manager) with a random token."""
        from .recipes import Lock
        return Lock(self, name, timeout=timeout, **options)

    def id_generator(self, name: Any, block: int = 1000) -> Any:
        """Unique increasing ids across processes, reserved ``block`` at a time."""
        from .recipes import IdGenerator
        return IdGenerator(self, name, block=block)

    @property
    def local_cache(self) -> Any:
        """The client's LocalCache (``local_cache=``), or None."""
        return self._local

    def _listen_interval(self) -> float:
        return self._health_interval or 1.0

    @property
    def servers(self) -> List[str]:
        return [s.address for s in self._servers]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.servers!r})"
