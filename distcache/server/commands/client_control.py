"""CLIENT PAUSE, UNPAUSE and REPLY: clients that wait, and clients that want no replies.

The pause itself is server/pause.py; replies are muted in the dispatcher's
gate (``Client._gate``), which a client with replies off or skipped passes.
"""
from __future__ import annotations

from typing import Any, List

from ...protocol import OK
from ..connection import BLOCKED
from ..errors import SYNTAX, CommandError, subcommand_syntax
from .args import to_int
from .table import command

_SUB = dict(group="connection", parent="client")


@command("pause", -3, "admin noscript loading stale", since="3.0.0", **_SUB)
def client_pause(c: Any, args: List[bytes]) -> Any:
    """Hold clients' commands (all, or those that write) for a number of milliseconds."""
    ms = to_int(args[2], "ERR timeout is not an integer or out of range")
    if ms < 0:
        raise CommandError("ERR timeout is negative")
    mode = "all"
    if len(args) == 4:
        word = args[3].upper()
        if word not in (b"WRITE", b"ALL"):
            raise CommandError("ERR CLIENT PAUSE mode must be WRITE or ALL")
        mode = word.decode().lower()
    elif len(args) > 4:
        raise CommandError(subcommand_syntax(args))
    c.server.pause.pause(ms, mode)
    return OK


@command("unpause", 2, "admin noscript loading stale", since="6.2.0", **_SUB)
def client_unpause(c: Any, args: List[bytes]) -> Any:
    """End a pause now; the held commands run."""
    pause = c.server.pause
    if pause.mode is not None:
        c.server.loop.call_soon(pause.unpause)  # after this reply, as Redis's
    return OK


@command("reply", 3, "noscript loading stale", since="3.2.0", **_SUB)
def client_reply(c: Any, args: List[bytes]) -> Any:
    """ON, OFF (no replies from now on) or SKIP (none for the next command)."""
    word = args[2].upper()
    if word == b"ON":
        c.reply_off = c.skip_next = False
        c.update_restricted()
        return OK
    if word == b"OFF":
        c.reply_off = True
    elif word == b"SKIP":
        if not c.reply_off:
            c.skip_next = True
    else:
        raise CommandError(SYNTAX)
    c.update_restricted()
    return BLOCKED  # no reply of its own
