"""Persistence commands: SAVE, BGSAVE, LASTSAVE, BGREWRITEAOF."""
from __future__ import annotations

import logging
from typing import Any, List

from ...protocol import OK, Status
from ..errors import CommandError, SYNTAX
from .table import command

_SRV = dict(group="server")


def _persistence(c: Any) -> Any:
    p = getattr(c.server, "persistence", None)
    if p is None:
        raise CommandError("ERR persistence is not available")
    return p


@command("save", 1, "admin noscript no_multi", **_SRV)
def save(c: Any, args: List[bytes]) -> Any:
    """Write a snapshot synchronously."""
    p = _persistence(c)
    if p.job is not None and p.job.kind == "rdb":
        raise CommandError("ERR Background save already in progress")
    try:
        p.save()
    except Exception:
        raise CommandError("ERR Failed to save the snapshot, check the server log") from None
    return OK


@command("bgsave", -1, "admin noscript", **_SRV)
def bgsave(c: Any, args: List[bytes]) -> Any:
    """Write a snapshot in the background (SCHEDULE: after a running rewrite)."""
    schedule = False
    if len(args) > 2 or (len(args) == 2 and args[1].upper() != b"SCHEDULE"):
        raise CommandError(SYNTAX)
    if len(args) == 2:
        schedule = True
    p = _persistence(c)
    if p.job is not None:
        if p.job.kind == "rdb":
            raise CommandError("ERR Background save already in progress")
        if not schedule:
            raise CommandError("ERR Another child process is active (AOF?): can't BGSAVE "
                               "right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE "
                               "whenever possible.")
        p.bgsave_scheduled = True
        return Status(b"Background saving scheduled")
    return _start_soon(c, p, "bgsave_scheduled", _start_scheduled,
                       b"Background saving started")


def _start_soon(c: Any, p: Any, flag: str, starter: Any, reply: bytes) -> Any:
    # The child is forked at the end of this event-loop batch, outside any
    # command, so the snapshot and its recorded log position match.
    setattr(p, flag, True)
    c.server.loop.call_soon(starter, p)
    return Status(reply)


def _start_scheduled(p: Any) -> None:
    if p.bgsave_scheduled and p.job is None:
        _guarded(p.bgsave, p, "rdb_status", "BGSAVE")


def _guarded(action: Any, p: Any, status: str, name: str) -> None:
    try:
        action()
    except Exception:
        setattr(p, status, "err")
        logging.getLogger("distcache.persistence").exception("%s failed", name)


@command("lastsave", 1, "loading fast", **_SRV)
def lastsave(c: Any, args: List[bytes]) -> Any:
    """Unix time of the last successful snapshot."""
    return _persistence(c).lastsave


@command("bgrewriteaof", 1, "admin noscript", **_SRV)
def bgrewriteaof(c: Any, args: List[bytes]) -> Any:
    """Compact the append-only log into a fresh snapshot plus an empty log."""
    p = _persistence(c)
    if p.log is None:
        raise CommandError("ERR Background append only file rewriting needs appendonly yes "
                           "(CONFIG SET appendonly yes starts the log with a rewrite)")
    if p.job is not None:
        if p.job.kind == "aof":
            raise CommandError("ERR Background append only file rewriting already in progress")
        p.rewrite_scheduled = True
        return Status(b"Background append only file rewriting scheduled")
    return _start_soon(c, p, "rewrite_scheduled", _start_rewrite,
                       b"Background append only file rewriting started")


def _start_rewrite(p: Any) -> None:
    if p.rewrite_scheduled and p.job is None:
        p.rewrite_scheduled = False
        _guarded(p.rewrite, p, "rewrite_status", "BGREWRITEAOF")
