"""The RDB of a full resync, made by a forked child as Redis makes it.

The child serializes the copy-on-write dataset with distcache/rdb's
``RdbFileWriter`` (with Redis's replication aux fields, ``repl-id`` and
``repl-offset``) either into a pipe the primary relays to the replicas' sockets
(diskless: ``$EOF:<mark>`` ... ``<mark>``) or into a file sent as ``$<len>``
(disk-based). The event loop never serializes: it only relays bytes, and
stops reading the pipe while a replica's socket is full (the child then
waits), so a slow replica costs no memory.

Without ``os.fork`` the dataset is captured (references and container copies)
and written to the file on the loop in short slices.
"""
from __future__ import annotations

import logging
import os
import signal
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence

from ...persistence.background import TimeSlices, child_setup, fork, run_child, unfreeze
from ...rdb.codec import encode_string
from ...rdb.file import RdbFileWriter, default_aux

if TYPE_CHECKING:
    from .replica_link import ReplicaClient

log = logging.getLogger("distcache.replication")

CHUNK = 1024 * 1024


def rdb_aux(server: Any, replid: str, offset: int, stream_db: int = 0) -> Dict[bytes, bytes]:
    """Redis 7.0's aux fields of a replication RDB, in its order.

    ``stream_db``: the database the stream after the RDB is in (a replica passes
    on its primary's stream, which selects no database at its start)."""
    aux = default_aux(0)
    base = aux.pop(b"aof-base")
    aux[b"repl-stream-db"] = b"%d" % stream_db
    aux[b"repl-id"] = replid.encode()
    aux[b"repl-offset"] = b"%d" % offset
    aux[b"aof-base"] = base
    return aux


#: Bytes written (and checksummed) at a time: the pure-Python CRC64 is 1.8x faster
#: over 1 MB pieces than over the writer's default 64 KB; small next to the pipe.
CRC_PIECE = 1 << 20


def write_rdb(stream: Any, dbs: List[Any], aux: Dict[bytes, bytes], compress: bool,
              checksum: bool, functions: Sequence[bytes] = ()) -> None:
    """The whole dataset as an RDB version 10 stream: the FUNCTION libraries' code,
    then the keys with their TTLs.

    Plain strings without a TTL, most of a cache, skip the per-key calls: their
    records are built here and handed to the writer in batches.
    """
    from ..commands.dump import codec_value
    writer = RdbFileWriter(stream, aux=aux, compress=compress, checksum=checksum)
    writer.w.chunk = CRC_PIECE
    for code in functions:
        writer.function(code)  # after the aux fields, before the keys, as Redis
    write = writer.w.write
    string = _string_encoder(compress)
    for db in dbs:
        data = db.data
        if not data:
            continue
        expires = db.expires
        writer.select_db(db.id, len(data), len(expires))
        key = writer.key
        parts: List[bytes] = []
        for name, value in data.items():
            if value.__class__ is bytes and name not in expires:
                parts += (b"\x00", string(name), string(value))
                if len(parts) >= 3000:
                    write(b"".join(parts))
                    parts.clear()
                continue
            if parts:
                write(b"".join(parts))
                parts.clear()
            key(name, *codec_value(value), expire_ms=expires.get(name))
        if parts:
            write(b"".join(parts))
    writer.finish()


def _string_encoder(compress: bool) -> Callable[[bytes], bytes]:
    """encode_string, with its common case (short, not a number) inlined."""
    heads = [bytes((n,)) for n in range(64)]
    maybe_int = frozenset(b"-0123456789")

    def string(s: bytes) -> bytes:
        n = len(s)
        if n < 64 and not (n <= 11 and s and s[0] in maybe_int) \
                and not (compress and n > 20):
            return heads[n] + s
        return encode_string(s, compress)

    return string


def _widen_pipe(fd: int) -> None:
    """Linux: a 1 MB pipe instead of 64 KB, so the child and the loop take turns
    16 times less often (the diskless transfer of 100k keys took twice as long as
    through a file with the default size)."""
    try:
        import fcntl
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except (ImportError, OSError):
        pass


class SyncJob:
    """One child producing one RDB for the replicas in ``links``.

    ``path`` is None for a diskless transfer (the pipe carries the RDB), else the
    file the child writes; in both cases the pipe's end (EOF) tells the loop that
    the child is done, with no polling.
    """

    def __init__(self, primary: Any, links: List["ReplicaClient"], diskless: bool,
                 on_done: Callable[["SyncJob", bool], None]) -> None:
        server = primary.server
        self.primary = primary
        self.loop = server.loop
        self.links = links
        self.diskless = diskless
        self.on_done = on_done
        self.offset = primary.state.master_repl_offset
        self.started = time.time()
        self.mark = os.urandom(20).hex().encode() if diskless else b""
        self.path: Optional[str] = None
        self.pid = -1
        self.reading = False
        self.finished = False
        config = server.config
        link = primary.state.link
        client = link.client if link is not None else None
        aux = rdb_aux(server, primary.state.replid, self.offset,
                      client.db.id if client is not None else 0)
        compress, checksum = bool(config["rdbcompression"]), bool(config["rdbchecksum"])
        #: The FUNCTION libraries, as snapshots find them (scripting/functions.py).
        self.functions = list(getattr(server.keyspace, "function_codes", None) or ())
        if not diskless:
            directory = os.path.abspath(config["dir"])
            os.makedirs(directory, exist_ok=True)
            self.path = os.path.join(directory, f"temp-repl-{os.getpid()}-{time.time_ns()}.rdb")
        if not hasattr(os, "fork"):
            self._start_sliced(server.keyspace.dbs, aux, compress, checksum)
            return
        rfd, wfd = os.pipe()
        _widen_pipe(wfd)
        try:
            pid = fork()
        except OSError:
            os.close(rfd)
            os.close(wfd)
            raise
        if pid == 0:
            self._child(rfd, wfd, server.keyspace.dbs, aux, compress, checksum)
        self.pid = pid
        os.close(wfd)
        os.set_blocking(rfd, False)
        self.rfd = rfd
        log.info("Starting BGSAVE for SYNC with target: %s (pid %d)",
                 "replicas sockets" if diskless else "disk", pid)
        if diskless:
            for link in links:
                link.transport.write(b"$EOF:%s\r\n" % self.mark)
        self.resume()

    def _child(self, rfd: int, wfd: int, dbs: List[Any], aux: Dict[bytes, bytes],
               compress: bool, checksum: bool) -> None:
        def work() -> None:
            os.close(rfd)
            child_setup(keep=wfd)
            if self.path is None:
                with os.fdopen(wfd, "wb", buffering=CHUNK) as stream:
                    write_rdb(stream, dbs, aux, compress, checksum, self.functions)
            else:
                with open(self.path, "wb", buffering=CHUNK) as stream:
                    write_rdb(stream, dbs, aux, compress, checksum, self.functions)
        run_child(work)

    # -- the parent: relaying ---------------------------------------------------------

    def live_links(self) -> List["ReplicaClient"]:
        return [link for link in self.links if not link.closed]

    def resume(self) -> None:
        """Read the pipe again unless a replica's socket is still full."""
        if self.finished or self.reading or self.pid < 0:
            return
        if any(link.write_paused for link in self.live_links()):
            return
        self.reading = True
        self.loop.add_reader(self.rfd, self._readable)

    def _pause(self) -> None:
        if self.reading:
            self.reading = False
            self.loop.remove_reader(self.rfd)

    def _readable(self) -> None:
        try:
            data = os.read(self.rfd, CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._pause()
            os.close(self.rfd)
            self._end_child()
            return
        links = self.live_links()
        for link in links:
            link.transport.write(data)
        if not links and self.diskless:
            self.kill()
            self.on_done(self, False)
        elif any(link.write_paused for link in links):
            self._pause()

    def _end_child(self) -> None:
        try:
            _, status = os.waitpid(self.pid, 0)  # the pipe closed: it is exiting
            ok = os.waitstatus_to_exitcode(status) == 0
        except ChildProcessError:
            ok = False
        unfreeze()
        self.pid = -1
        self._done(ok)

    def _done(self, ok: bool) -> None:
        self.finished = True
        if not ok:
            log.warning("Background transfer error (the RDB child failed)")
            self._unlink()
        else:
            log.info("Background RDB transfer terminated with success"
                     if self.diskless else "Background saving terminated with success")
        self.on_done(self, ok)

    def open_file(self) -> int:
        """A descriptor on the finished file (for one replica), or -1."""
        try:
            return os.open(self.path, os.O_RDONLY) if self.path else -1
        except OSError:
            return -1

    def _unlink(self) -> None:
        if self.path:
            try:
                os.unlink(self.path)
            except OSError:
                pass

    def kill(self) -> None:
        """Stop the child (no replica left, shutdown)."""
        if self.finished:
            return
        self.finished = True
        self._pause()
        if self.pid > 0:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except OSError:
                pass
            try:
                os.close(self.rfd)
            except OSError:
                pass
            unfreeze()
            self.pid = -1
        slices = getattr(self, "slices", None)
        if slices is not None:
            slices.cancel()
        self._unlink()

    # -- without fork: capture now, write the file in slices ---------------------------

    def _start_sliced(self, dbs: List[Any], aux: Dict[bytes, bytes], compress: bool,
                      checksum: bool) -> None:
        from ..keyspace import Keyspace
        copy = Keyspace(len(dbs))
        for db, mine in zip(dbs, copy.dbs):
            mine.data = {k: v if v.__class__ is bytes else v.copy() for k, v in db.data.items()}
            mine.expires = dict(db.expires)
        self.stream = open(self.path, "wb", buffering=CHUNK)  # type: ignore[arg-type]
        self.slices = TimeSlices(self.loop, self._sliced(copy.dbs, aux, compress, checksum),
                                 self._sliced_end, "replication RDB", log)

    def _sliced(self, dbs: List[Any], aux: Dict[bytes, bytes], compress: bool,
                checksum: bool) -> Any:
        from ..commands.dump import codec_value
        writer = RdbFileWriter(self.stream, aux=aux, compress=compress, checksum=checksum)
        for code in self.functions:
            writer.function(code)
        for db in dbs:
            if db.data:
                writer.select_db(db.id, len(db.data), len(db.expires))
                for name, value in db.data.items():
                    writer.key(name, *codec_value(value), expire_ms=db.expires.get(name))
                    yield
        writer.finish()

    def _sliced_end(self, ok: bool) -> None:
        self.stream.close()
        self._done(ok)
