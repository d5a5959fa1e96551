"""The log's write path, a part of :class:`~.manager.Persistence`.

Writes are staged as they happen (by the dispatcher itself, or through
:meth:`LogWriter.propagate`); after a client's read, :meth:`LogWriter.log_read`
logs the read's own bytes when they were exactly its writes and encodes them
otherwise; once per event-loop batch :meth:`LogWriter._end_batch` writes the
batch as one record (and, with ``appendfsync always``, fsyncs it) before the
batch's replies leave.
"""
from __future__ import annotations

import logging
import os
from typing import Any, List, Optional, Tuple

from .propagation import send_replies, verbatim
from . import aof, snapshot

log = logging.getLogger("distcache.persistence")


class LogWriter:
    """Staging, batching, writing and fsyncing log records (state lives in
    Persistence.__init__)."""

    server: Any
    config: Any
    keyspace: Any
    log: Any

    def propagate(self, db_id: int, commands: List[List[bytes]]) -> None:
        """The write hook: stage the command; nothing is encoded or written here.

        A single command is only staged: if it turns out to be one of the
        commands of the read being executed, and every command of that read
        was logged unchanged, the read's own wire bytes are logged instead of
        an encoding (see :meth:`log_read`).
        """
        if not self.buf or db_id != self.buf_db:
            self._select(db_id)
        if len(commands) == 1:
            self.staged.append(commands[0])
        else:
            self._encode_staged()
            aof.encode_commands(commands, self.buf)

    def _encode_staged(self) -> None:
        staged = self.staged
        if staged:
            aof.encode_commands(staged, self.buf)
            staged.clear()

    def _select(self, db_id: int) -> None:
        if not self.buf and not self.scheduled:
            self.scheduled = True
            self.server.loop.call_soon(self._end_batch)
        self._encode_staged()
        self.buf.append(aof.select_bytes(db_id))
        self.buf_db = db_id
        # The dispatcher may stage this database's plain writes itself until the
        # batch is written, if nothing else listens to writes.
        keyspace = self.keyspace
        keyspace.stage = self.staged  # the replication stream may have lent it before
        keyspace.stage_db = keyspace.dbs[db_id] if keyspace.propagators == [self.propagate] \
            else None

    def log_read(self, client: Any, data: Optional[bytes], commands: List[Any]) -> None:
        """After a client's read ran: log what it wrote, then send or hold its replies.

        ``data`` is the read's bytes when they hold exactly ``commands`` (no
        partial request on either side, no inline request). When the commands
        staged since are exactly those commands (``propagation.verbatim``), the
        bytes are the record: logging them costs one append instead of an
        encoding per command.
        """
        staged = self.staged
        if staged:
            if verbatim(staged, data, commands):
                self.buf.append(data)  # type: ignore[arg-type]
                staged.clear()
            else:
                self._encode_staged()
        if client.out or client.closing:
            self.defer_reply(client)

    def defer_reply(self, client: Any) -> None:
        """Hold a client's replies until the batch is written (always: and fsynced)."""
        if not self.buf and not self.deferred and not (self.fsync_always and self.unsynced):
            send_replies(client)  # nothing pending: no need to wait
            return
        self.deferred.append(client)
        if not self.scheduled:
            self.scheduled = True
            self.server.loop.call_soon(self._end_batch)

    def _end_batch(self) -> None:
        self.scheduled = False
        if self.buf:
            self._write_buffer()
        if self.fsync_always:
            self._fsync_if_always()
        deferred = self.deferred
        if deferred:
            self.deferred = []
            self.server.run_before_reply()
            for client in deferred:
                send_replies(client)

    def _write_buffer(self) -> bool:
        self.keyspace.stage_db = None  # the next write selects its database again
        self._encode_staged()
        logf = self.log
        if logf is None:
            self.buf.clear()
            return True
        payload = b"".join(self.buf)
        self.buf.clear()
        record = aof.encode_record(payload)
        try:
            logf.append(record)
        except OSError as exc:
            if self.write_status == "ok":
                log.error("error writing to the append only file %s: %s", logf.path, exc)
            self.write_error = os.strerror(exc.errno) if exc.errno else str(exc)
            self.write_status = "err"
            if self.fsync_always:
                log.critical("can't recover from a log write error when appendfsync is "
                             "always: exiting")
                os._exit(1)
            self.buf[:0] = [payload]  # retried by the next batch or the cron
            return False
        if self.write_status != "ok":
            log.warning("log write error recovered")
            self.write_status = "ok"
        self.unsynced = True
        return True

    def _fsync_if_always(self) -> None:
        if self.fsync_always and self.unsynced and self.log is not None:
            self.unsynced = False
            self.log.fsync()

    def _fsync_loop(self) -> None:
        while not self.fsync_stop.wait(1.0):
            with self.lock:
                logf = self.log
                if logf is None or logf.fd < 0 or not self.unsynced \
                        or self.config["appendfsync"] != "everysec":
                    continue
                self.unsynced = False
                try:
                    os.fsync(logf.fd)
                except OSError as exc:
                    log.warning("fsync of the log failed: %s", exc)

    def flush_log(self, fsync: bool = False) -> None:
        """Write the pending batch now (before a fork, a save, a shutdown)."""
        if self.buf:
            self._write_buffer()
        if fsync and self.log is not None:
            with self.lock:
                self.log.fsync()
                self.unsynced = False

    def log_position(self) -> Tuple[bytes, int]:
        if self.log is None:
            return snapshot.NO_LOG, 0
        return self.log.log_id, self.log.size

