"""A read's writes to the append-only log and the replication stream, as its own
bytes when they can be.

Both sinks stage each single write (its argument list, the very list the parser
made) until the read that made it has run. Then one decision serves both
(:func:`verbatim`): if the writes staged are exactly the read's commands, in
order, each propagated with its own arguments (no rewrite such as SET EX to
PXAT, INCRBYFLOAT to SET, SPOP to SREM, no MULTI, script or failed write in the
read), and the read's bytes hold exactly those commands in multibulk form, the
bytes are what replaying the writes needs: each sink appends them once instead
of encoding every command (:func:`take_read`).

:func:`rewire` routes each read's end (``server.log_read``, called when
``server.before_reply`` is set) to the sinks that are on: the log alone (its
replies wait for the record), the stream alone (replies leave at once, as in
Redis), or both.
"""
from __future__ import annotations

from operator import is_
from typing import Any, Callable, List, Optional

from .aof import encode_commands

ReadHook = Callable[[Any, Optional[bytes], List[Any]], None]


def verbatim(staged: List[List[bytes]], data: Optional[bytes], commands: List[Any]) -> bool:
    """Whether ``data`` (a read's bytes, None when they hold more or less than
    ``commands``, or inline requests) stands for the writes ``staged``: they are
    ``commands`` themselves, all of them, in order."""
    return data is not None and len(staged) == len(commands) \
        and all(map(is_, staged, commands))


def take_read(staged: List[List[bytes]], out: List[bytes], data: Optional[bytes]) -> None:
    """Move the writes staged to ``out``: as ``data`` when it is their bytes
    (see :func:`verbatim`), else encoded."""
    if data is not None:
        out.append(data)
    else:
        encode_commands(staged, out)
    staged.clear()


def send_replies(client: Any) -> None:
    """Send a client's replies now, and close it if it is closing."""
    out = client.out
    if out and not client.closed:
        data = b"".join(out) if len(out) > 1 else out[0]
        out.clear()
        client.transport.write(data)
    if client.closing and not client.closed:
        client.close_now()


def rewire(server: Any) -> None:
    """Route the end of each read to the log and the stream, whichever are on
    (after either changes)."""
    from ..server.app import _no_log
    from ..server.connection import Client
    persistence = getattr(server, "persistence", None)
    logging_on = persistence is not None and persistence.log is not None
    primary = server.replication.primary
    streaming = primary.feed in server.keyspace.propagators
    server.before_reply = logging_on or streaming
    hook: ReadHook = _no_log
    defer: Callable[[Any], None] = Client.flush
    if logging_on:
        hook, defer = persistence.log_read, persistence.defer_reply
        if streaming:
            hook = _both(persistence, primary)
    elif streaming:
        hook, defer = primary.read_done, send_replies
    server.log_read = hook
    server.defer_reply = defer


def _both(persistence: Any, primary: Any) -> ReadHook:
    """The log and the stream, on one decision."""
    def log_and_stream(client: Any, data: Optional[bytes], commands: List[Any]) -> None:
        logged = persistence.staged
        if data is not None and not verbatim(logged, data, commands):
            data = None
        if logged:
            take_read(logged, persistence.buf, data)
        # Every write reached both (with two propagators neither lends the
        # dispatcher its shortcut): if the log's were the read's commands, the
        # stream's end with them, and only writes made before the read (an
        # expiry's DEL) can precede them.
        streamed = primary.staged
        if streamed:
            if data is not None and len(streamed) != len(commands):
                data = None
            take_read(streamed, primary.outq, data)
        if client.out or client.closing:
            persistence.defer_reply(client)
    return log_and_stream
