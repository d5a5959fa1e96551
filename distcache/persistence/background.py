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
import warnings
from typing import Any, Callable, List, NamedTuple, Optional

from . import snapshot

log = logging.getLogger("distcache.persistence")

SLICE_SECONDS = 0.01


def can_fork() -> bool:
    return hasattr(os, "fork") and not os.environ.get("DISTCACHE_PERSISTENCE_NOFORK")


def unfreeze() -> None:
    """gc.unfreeze where it exists (PyPy has no gc.freeze)."""
    if hasattr(gc, "unfreeze"):
        gc.unfreeze()


def fork() -> int:
    """os.fork for a child that serializes the copy-on-write dataset; the parent's
    collector leaves shared pages alone until the caller's ``gc.unfreeze()``."""
    if hasattr(gc, "freeze"):
        gc.freeze()
    try:
        with warnings.catch_warnings():  # 3.12+: "multi-threaded process" (fsync thread)
            warnings.simplefilter("ignore", DeprecationWarning)
            return os.fork()
    except OSError:
        unfreeze()
        raise


def child_setup(keep: int = -1) -> None:
    """In a forked child: no collector, no inherited descriptor but ``keep`` (a
    crashed parent's port and connections must not stay open here), SIGTERM ends
    it, SIGINT (a Ctrl-C meant for the server) does not."""
    gc.disable()
    # The logging handlers' files stay (progress lines).
    _close_fds_but(([keep] if keep >= 0 else []) + _logging_fds())
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        signal.set_wakeup_fd(-1)
    except (ValueError, OSError):
        pass


def run_child(work: Callable[[], None]) -> None:
    """The body of a forked child: ``work``, then exit 0, or 1 with the traceback
    printed; it never returns into the parent's code."""
    code = 1
    try:
        work()
        code = 0
    except BaseException:
        try:
            import traceback
            traceback.print_exc()
        except BaseException:
            pass
    finally:
        os._exit(code)


def _logging_fds() -> List[int]:
    """The file descriptors of the distcache logger's handlers."""
    fds = []
    for handler in logging.getLogger("distcache").handlers:
        stream = getattr(handler, "stream", None)
        try:
            fds.append(stream.fileno())
        except (AttributeError, OSError, ValueError):
            pass
    return fds


def _close_fds_but(keep: List[int]) -> None:
    """Close every descriptor from 3 up, except those in ``keep``."""
    low = 3
    for fd in sorted(set(fd for fd in keep if fd >= 3)):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, max_fd())


def max_fd() -> int:
    try:
        return min(int(os.sysconf("SC_OPEN_MAX")), 1 << 20)
    except (AttributeError, ValueError, OSError):
        return 65536


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
        unfreeze()
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
        unfreeze()
        _unlink(self.tmp_path)


class TimeSlices:
    """Run ``steps`` (a generator) on the loop, SLICE_SECONDS a turn, then ``on_end``.

    ``on_end(True)`` once it is exhausted; ``on_end(False)`` if a step (or
    ``on_end(True)`` itself) raised, logged as ``what`` failed. The fork-less
    snapshot and full-sync RDB both encode this way."""

    def __init__(self, loop: Any, steps: Any, on_end: Callable[[bool], None], what: str,
                 logger: logging.Logger = log) -> None:
        self.loop = loop
        self.steps = steps
        self.on_end = on_end
        self.what = what
        self.log = logger
        self.handle = loop.call_soon(self._step)

    def _step(self) -> None:
        deadline = time.perf_counter() + SLICE_SECONDS
        try:
            for _ in self.steps:
                if time.perf_counter() >= deadline:
                    self.handle = self.loop.call_soon(self._step)
                    return
            self.on_end(True)
        except Exception:
            self.log.exception("%s failed", self.what)
            self.on_end(False)

    def cancel(self) -> None:
        self.handle.cancel()


class _Captured(NamedTuple):
    """A database as a fork-less save captured it."""

    id: int
    data: dict
    expires: dict


class SlicedJob:
    """Fork-less snapshot: capture now (C-speed copies), encode in loop slices."""

    def __init__(self, kind: str, loop: Any, dbs: List[Any], path: str, tmp_path: str,
                 log_id: bytes, log_offset: int, rename: bool,
                 on_done: Callable[[bool], None], rdb_compress: Optional[bool] = None,
                 rdb_checksum: bool = True) -> None:
        """``rdb_compress`` not None: write an RDB file (with that rdbcompression,
        and a zero CRC when ``rdb_checksum`` is False)."""
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
            steps = self._write(self._chunks(captured, len(dbs), log_id, log_offset, codes))
        else:
            from .rdb_snapshot import RdbSnapshotFile
            self.writer = RdbSnapshotFile(path, tmp_path, rdb_compress, log_id, log_offset,
                                          rdb_checksum)
            steps = self.writer.steps([_Captured(db_id, dict(zip(keys, values)), expires)
                                       for db_id, keys, values, expires in captured],
                                      function_codes=codes)
        self.slices = TimeSlices(loop, steps, self._end, "snapshot")

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

    def _end(self, ok: bool) -> None:
        if ok:
            self.writer.commit(self.rename)
            self.finished = True
        else:
            self.writer.abort()
            self.finished = False

    def poll(self) -> bool:
        if self.finished is None:
            return False
        self.on_done(self.finished)
        return True

    def kill(self) -> None:
        if self.finished is None:
            self.slices.cancel()
            self.writer.abort()
            self.finished = False


def _unlink(path: Optional[str]) -> None:
    if path:
        try:
            os.unlink(path)
        except OSError:
            pass
