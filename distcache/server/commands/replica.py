"""Replication commands of the replica side: REPLICAOF (SLAVEOF) and ROLE.

The work is in server/replication/replica.py; these only check arguments and
answer with Redis's replies.
"""
from __future__ import annotations

from typing import Any, List

from ...protocol import OK, Status
from ..errors import CommandError
from .table import command

_REPL = dict(group="server")
BAD_PORT = "ERR Invalid master port"


@command("replicaof", 3, "admin noscript stale no_async_loading", since="5.0.0", **_REPL)
def replicaof(c: Any, args: List[bytes]) -> Any:
    """Follow another server (host port), or stop following it (NO ONE)."""
    from ..replication.replica import set_primary, unset_primary
    host, port_text = args[1], args[2]
    if host.lower() == b"no" and port_text.lower() == b"one":
        unset_primary(c.server)
        return OK
    try:
        port = int(port_text)
    except ValueError:
        raise CommandError(BAD_PORT) from None
    if not 0 <= port <= 65535 or port_text.strip() != port_text:
        raise CommandError(BAD_PORT)
    if not set_primary(c.server, host.decode("utf-8", "replace"), port):
        return Status(b"OK Already connected to specified master")
    return OK


@command("slaveof", 3, "admin noscript stale no_async_loading", **_REPL)
def slaveof(c: Any, args: List[bytes]) -> Any:
    """Follow another server: REPLICAOF's old name."""
    return replicaof(c, args)


@command("role", 1, "noscript loading stale fast", since="2.8.12", **_REPL)
def role(c: Any, args: List[bytes]) -> Any:
    """The replication role: ["master", offset, replicas] or ["slave", host, port,
    state, offset]."""
    state = c.server.replication
    if state.link is not None:
        return state.link.role_reply()
    return state.role_reply()
