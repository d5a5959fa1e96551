"""Rebalancing: move the keys whose shard changes from an old pool to a new one.

>>> from distcache.client.rebalance import rebalance
>>> report = rebalance("h1:2050,h2:2050,h3:2050", "h1:2050,h2:2050,h3:2050,h4:2050",
...                    rate=5000, state="rebalance.json")
>>> report.moved
24987

Each old shard's primary is read with ``SCAN``; a key whose owner in the new
pool (the same ketama placement as ``CacheClient``, see ``shards.py``) is
another primary is sent there with ``MIGRATE ... KEYS`` (no ``REPLACE``), in
batches. MIGRATE is atomic on the source: the target has the key (with its
TTL) before the source deletes it, and no other command runs on the source
in between, so a client reading the new owner, then the old one, then the new
one again (``CacheClient(NEW, previous=OLD)``, ``transition.py``) never
misses. A key the new owner already holds (written there by such a client)
is refused with ``BUSYKEY``: the new owner's copy is the newer, so the old
copy is deleted. The source servers must reach the targets at the addresses
of the new pool.

A run is resumable: with ``state=PATH`` the SCAN cursor of every source is
saved after each page, and a later run with the same pools continues from
there (then scans each source it resumed once more from the start, since a
distcache server's cursor may restart after a long pause). It is idempotent:
keys already moved are no longer on the old owner, so a second run moves 0.
"""
from __future__ import annotations

import json
import logging
import os
import time
from typing import Any, Callable, Dict, List, Optional

from ..protocol import ReplyError
from .connection import Connection
from .errors import ResponseError
from .sync import CacheClient

__all__ = ["rebalance", "Progress", "RebalanceError"]

log = logging.getLogger("distcache.rebalance")

#: The MIGRATE timeout (ms) when none is given: per step, as Redis counts it.
DEFAULT_TIMEOUT = 10.0


class RebalanceError(ResponseError):
    """A batch could not be moved (the target refused it, or was unreachable)."""


class Progress:
    """Counters of a run, handed to ``on_progress`` and returned at the end."""

    __slots__ = ("moved", "bytes", "scanned", "total", "superseded", "started", "sources",
                 "done_sources", "finished")

    def __init__(self, total: int, sources: int) -> None:
        self.moved = 0  # keys now on their new owner
        self.bytes = 0  # their MEMORY USAGE on the source (an estimate), summed
        self.scanned = 0  # keys SCAN returned this run
        self.total = total  # keys on the sources when the run began (DBSIZE)
        self.superseded = 0  # old copies deleted because the new owner had the key
        self.started = time.monotonic()
        self.sources = sources
        self.done_sources = 0
        self.finished = False

    @property
    def elapsed(self) -> float:
        return max(1e-9, time.monotonic() - self.started)

    @property
    def rate(self) -> float:
        """Keys moved per second, this run."""
        return self.moved / self.elapsed

    @property
    def fraction(self) -> float:
        """Share of the sources' keys scanned (0..1)."""
        if self.finished:
            return 1.0
        return min(1.0, self.scanned / self.total) if self.total else 0.0

    @property
    def eta(self) -> Optional[float]:
        """Seconds left, from the scan's pace; None before any progress."""
        if self.finished:
            return 0.0
        if not self.scanned:
            return None
        return max(0.0, (self.total - self.scanned) * self.elapsed / self.scanned)

    def __repr__(self) -> str:
        return (f"Progress(moved={self.moved}, bytes={self.bytes}, scanned={self.scanned}, "
                f"total={self.total}, superseded={self.superseded})")


class _State:
    """The state file: the pools and, per source, its SCAN cursor and whether
    it is finished. Written whole to a temporary file, then renamed."""

    def __init__(self, path: Optional[str], old: List[str], new: List[str]) -> None:
        self.path = path
        self.pools = {"from": old, "to": new}
        self.sources: Dict[str, Dict[str, Any]] = {}
        if path and os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                saved = json.load(fh)
            if saved.get("from") != old or saved.get("to") != new:
                raise ValueError(f"state file {path} belongs to another rebalance "
                                 f"({saved.get('from')} -> {saved.get('to')}); "
                                 f"remove it or give another --state")
            sources = saved.get("sources", {})
            # A finished run starts afresh: a new pass moves only what is misplaced.
            if not all(s.get("done") for s in sources.values()):
                self.sources = sources

    def source(self, address: str) -> Dict[str, Any]:
        return self.sources.setdefault(address, {"cursor": 0, "done": False, "sweep": False})

    def save(self) -> None:
        if not self.path:
            return
        tmp = f"{self.path}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(dict(self.pools, sources=self.sources), fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)


class _Mover:
    """One run: connections to the sources and targets, the counters, the throttle."""

    def __init__(self, old: CacheClient, new: CacheClient, conn_kwargs: Dict[str, Any],
                 batch: int, rate: Optional[float], timeout: float,
                 on_progress: Optional[Callable[[Progress], Any]],
                 on_batch: Optional[Callable[[Progress, List[bytes]], Any]]) -> None:
        self.old, self.new = old, new
        self.conn_kwargs = conn_kwargs
        self.batch = batch
        self.rate = rate
        self.timeout_ms = max(1, int(timeout * 1000))
        self.on_progress = on_progress
        self.on_batch = on_batch
        self.targets = {s.address: s for s in new._servers}
        self.conns: Dict[str, Connection] = {}
        self.auth: List[Any] = []
        password, username = conn_kwargs.get("password"), conn_kwargs.get("username")
        if password is not None:
            self.auth = [b"AUTH2", username, password] if username else [b"AUTH", password]
        self.db = int(conn_kwargs.get("db", 0))
        self.progress = Progress(0, len(old._servers))
        self._last_report = 0.0

    def conn(self, server: Any) -> Connection:
        conn = self.conns.get(server.address)
        if conn is None:
            conn = Connection(server, **self.conn_kwargs).connect()
            self.conns[server.address] = conn
        return conn

    def close(self) -> None:
        for conn in self.conns.values():
            conn.close()

    def call(self, server: Any, cmds: List[Any]) -> List[Any]:
        replies = self.conn(server).request_many(cmds)
        for reply in replies:
            if reply.__class__ is ReplyError and not str(reply).startswith("ERR Target"):
                raise RebalanceError(f"{server.address}: {reply}")
        return replies

    def count_keys(self) -> int:
        return sum(int(self.call(s, [(b"DBSIZE",)])[0]) for s in self.old._servers)

    def scan_source(self, source: Any, cursor: int) -> Any:
        """Yield the cursor each time every key SCAN returned before it is handled.

        Keys to move gather over pages until ``batch`` of them wait (a page
        holds about a quarter that many when a 4th shard joins), so MIGRATEs
        stay full; a resumed run rescans the pages whose keys had not left.
        """
        pending: Dict[str, List[bytes]] = {}
        waiting = 0
        while True:
            cursor_raw, keys = self.call(source, [(b"SCAN", cursor, b"COUNT", self.batch)])[0]
            cursor = int(cursor_raw)
            for key in keys:
                owner = self.new.server_for(key)
                if owner != source.address:
                    pending.setdefault(owner, []).append(key)
                    waiting += 1
            self.progress.scanned += len(keys)
            if waiting >= self.batch or cursor == 0:
                for owner, moving in pending.items():
                    for i in range(0, len(moving), self.batch):
                        self.move(source, self.targets[owner], moving[i:i + self.batch])
                pending, waiting = {}, 0
                yield cursor
            if cursor == 0:
                return

    def move(self, source: Any, target: Any, keys: List[bytes]) -> None:
        """MIGRATE ``keys`` from ``source`` to ``target``; count what moved."""
        # Redis's default estimate (5 samples of a collection): exact sizes cost O(N).
        sizes = self.call(source, [(b"MEMORY", b"USAGE", k) for k in keys])
        migrate = [b"MIGRATE", target.host, target.port, b"", self.db, self.timeout_ms]
        reply = self.call(source, [migrate + self.auth + [b"KEYS", *keys]])[0]
        existed = [k for k, size in zip(keys, sizes) if isinstance(size, int)]
        moved = existed
        if reply.__class__ is ReplyError:  # some keys were refused: see which
            moved = self.settle(source, target, existed, str(reply))
        progress = self.progress
        progress.moved += len(moved)
        kept = set(moved)
        progress.bytes += sum(s for k, s in zip(keys, sizes) if k in kept and isinstance(s, int))
        if self.on_batch is not None:
            self.on_batch(progress, moved)
        self.report()
        self.throttle()

    def settle(self, source: Any, target: Any, keys: List[bytes], error: str) -> List[bytes]:
        """After a refused MIGRATE: an old copy whose key the target already has
        (BUSYKEY: written there meanwhile) is deleted; anything else is an error."""
        if not keys:
            return []
        left = [k for k, n in zip(keys, self.call(source, [(b"EXISTS", k) for k in keys])) if n]
        held = [k for k, n in zip(left, self.call(target, [(b"EXISTS", k) for k in left])) if n]
        if held:
            self.call(source, [(b"DEL", *held)])
            self.progress.superseded += len(held)
        stuck = set(left) - set(held)
        if stuck:
            raise RebalanceError(f"{source.address} -> {target.address}: {len(stuck)} keys "
                                 f"not moved: {error}")
        return [k for k in keys if k not in set(left)]

    def throttle(self) -> None:
        if self.rate:
            ahead = self.progress.moved / self.rate - self.progress.elapsed
            if ahead > 0:
                time.sleep(ahead)

    def report(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.on_progress is not None and (force or now - self._last_report >= 0.1):
            self._last_report = now
            self.on_progress(self.progress)


def rebalance(old: Any, new: Any, *, rate: Optional[float] = None, batch: int = 100,
              state: Optional[str] = None, password: Optional[str] = None,
              username: Optional[str] = None, db: int = 0, ssl: Any = None,
              timeout: float = DEFAULT_TIMEOUT, connect_timeout: float = 5.0,
              on_progress: Optional[Callable[[Progress], Any]] = None,
              on_batch: Optional[Callable[[Progress, List[bytes]], Any]] = None) -> Progress:
    """Move every key of ``old``'s primaries whose owner in ``new`` is another
    primary; returns the run's :class:`Progress`.

    ``old`` and ``new`` are pools as ``CacheClient`` takes them. ``rate`` caps
    the keys moved per second; ``batch`` is the SCAN COUNT and the most keys
    per MIGRATE; ``state`` is a file that makes the run resumable.
    ``on_progress(progress)`` is called at most 10 times a second and at the
    end; ``on_batch(progress, moved_keys)`` after every MIGRATE (an exception
    it raises stops the run, as an interruption would).
    """
    batch = max(1, min(int(batch), 10000))
    options: Dict[str, Any] = dict(health_interval=None, password=password, username=username,
                                   db=db, ssl=ssl, connect_timeout=connect_timeout,
                                   timeout=timeout + connect_timeout)
    old_client, new_client = CacheClient(old, **options), CacheClient(new, **options)
    saved = _State(state, [str(s) for s in old_client._servers],
                   [str(s) for s in new_client._servers])
    mover = _Mover(old_client, new_client, old_client._conn_kwargs, batch, rate, timeout,
                   on_progress, on_batch)
    try:
        mover.progress.total = mover.count_keys()
        for source in old_client._servers:
            entry = saved.source(source.address)
            if entry["done"]:
                mover.progress.done_sources += 1
                continue
            if entry["cursor"]:
                entry["sweep"] = True  # resumed: scan it once more from the start
                log.info("resuming %s at cursor %s", source.address, entry["cursor"])
            passes = [entry["cursor"]] + ([0] if entry["sweep"] else [])
            for start in passes:
                for cursor in mover.scan_source(source, start):
                    entry["cursor"] = cursor
                    saved.save()
            entry.update(done=True, cursor=0, sweep=False)
            saved.save()
            mover.progress.done_sources += 1
        mover.progress.finished = True
        mover.report(force=True)
        return mover.progress
    finally:
        mover.close()
        old_client.close()
        new_client.close()
