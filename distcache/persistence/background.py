"""Background snapshot jobs: a forked child (POSIX) or time-sliced encoding (no fork).

Both expose ``poll()`` (True once finished; calls ``on_done(ok)``) and
``kill()``, so the persistence manager's cron treats them alike.
"""
from __future__ import annotations

import gc
import logging
import os
import signal
import time
from typing import Any, Callable, List, NamedTuple, Optional

from . import snapshot

log = logging.getLogger("distcache.persistence")

SLICE_SECONDS = 0.01


def _nothing() -> None:
    pass


# PyPy has no gc.freeze: its collector moves young objects and marks in the
# objects' headers, so a forked child's pages are copied regardless.
gc_freeze: Callable[[], None] = getattr(gc, "freeze", _nothing)
gc_unfreeze: Callable[[], None] = getattr(gc, "unfreeze", _nothing)


def can_fork() -> bool:
    return hasattr(os, "fork") and not os.environ.get("DISTCACHE_PERSISTENCE_NOFORK")


class ForkJob:
    """A snapshot written by a forked child."""

    def __init__(self, kind: str, pid: int, tmp_path: str, on_done: Callable[[bool], None]):
        self.kind = kind
        self.pid = pid
        self.tmp_path = tmp_path
        self.on_done = on_done
        self.started = time.time()

    def poll(self) -> bool:
        """True when finished (and on_done called)."""
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            pid, status = self.pid, 1 << 8
        if pid == 0:
            return False
        gc_unfreeze()
        code = os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") \
            else (status >> 8)
        ok = code == 0
        if not ok:
            log.warning("%s child %d exited with %s", self.kind, self.pid, code)
            _unlink(self.tmp_path)
        self.on_done(ok)
        return True

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except OSError:
            pass
        gc_unfreeze()
        _unlink(self.tmp_path)


class _Captured(NamedTuple):
    """A database as a fork-less save captured it."""

    id: int
    data: dict
    expires: dict


class SlicedJob:
    """Fork-less snapshot: capture now (C-speed copies), encode in loop slices."""

    def __init__(self, kind: str, loop: Any, dbs: List[Any], path: str, tmp_path: str,
                 log_id: bytes, log_offset: int, rename: bool,
                 on_done: Callable[[bool], None], rdb_compress: Optional[bool] = None) -> None:
        """``rdb_compress`` not None: write an RDB file (with that rdbcompression)."""
        self.kind = kind
        self.pid = -1
        self.tmp_path = tmp_path
        self.on_done = on_done
        self.started = time.time()
        self.finished: Optional[bool] = None
        self.rename = rename
        captured = []
        # FUNCTION libraries: the list is replaced, never changed in place, on a change
        codes = list(getattr(dbs[0].keyspace, "function_codes", None) or ()) if dbs else []
        for db in dbs:
            if db.data:
                # Two flat lists (no per-key tuples, so no GC pass over them);
                # containers are copied since later writes change them in place.
                keys = list(db.data)
                values = list(db.data.values())
                if set(map(type, values)) != {bytes}:
                    values = [v if v.__class__ is bytes else v.copy() for v in values]
                captured.append((db.id, keys, values, dict(db.expires)))
        self.writer: Any
        if rdb_compress is None:
            self.writer = snapshot.SnapshotWriter(path, tmp_path)
            self.gen = self._write(self._chunks(captured, len(dbs), log_id, log_offset, codes))
        else:
            from .rdb_snapshot import RdbSnapshotFile
            self.writer = RdbSnapshotFile(path, tmp_path, rdb_compress, log_id, log_offset)
            self.gen = self.writer.steps([_Captured(db_id, dict(zip(keys, values)), expires)
                                          for db_id, keys, values, expires in captured],
                                         function_codes=codes)
        self.loop = loop
        self.handle = loop.call_soon(self._step)

    @staticmethod
    def _chunks(captured: List[Any], ndbs: int, log_id: bytes, log_offset: int,
                codes: List[bytes]) -> Any:
        yield snapshot.header(ndbs, log_id, log_offset)
        if codes:
            yield snapshot.functions_block(codes)
        for db_id, keys, values, expires in captured:
            step = snapshot.BLOCK_KEYS
            for i in range(0, len(keys), step):
                batch = list(zip(keys[i:i + step], values[i:i + step]))
                yield b"".join(snapshot.encode_items(db_id, batch, expires))

    def _write(self, chunks: Any) -> Any:
        for chunk in chunks:
            self.writer.write(chunk)
            yield

    def _step(self) -> None:
        deadline = time.perf_counter() + SLICE_SECONDS
        try:
            for _ in self.gen:
                if time.perf_counter() >= deadline:
                    self.handle = self.loop.call_soon(self._step)
                    return
            self.writer.commit(self.rename)
            self.finished = True
        except Exception:
            log.exception("snapshot failed")
            self.writer.abort()
            self.finished = False

    def poll(self) -> bool:
        if self.finished is None:
            return False
        self.on_done(self.finished)
        return True

    def kill(self) -> None:
        if self.finished is None:
            self.handle.cancel()
            self.writer.abort()
            self.finished = False


def _unlink(path: Optional[str]) -> None:
    if path:
        try:
            os.unlink(path)
        except OSError:
            pass
