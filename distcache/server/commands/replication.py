"""Replication commands a primary answers: SYNC, PSYNC, REPLCONF, WAIT, ROLE.

The work is done in ``server/replication/primary.py``; these only read arguments
and reply with Redis's texts.
"""
from __future__ import annotations

from typing import Any, List

from ...protocol import OK
from ..connection import BLOCKED
from ..errors import CommandError, SYNTAX
from .args import to_int
from .table import command

_SRV = dict(group="server")
NO_MASTER_LINK = "NOMASTERLINK Can't SYNC while not connected with my master"
WAIT_ON_REPLICA = ("ERR WAIT cannot be used with replica instances. Please also note that "
                   "since Redis 4.0 if a replica is configured to be writable (which is not "
                   "the default) writes to replicas are just local and are not propagated.")


def _start_sync(c: Any, replid: Any, offset: int) -> Any:
    if getattr(c, "is_replica", False):
        return BLOCKED  # already a replica: ignored, as Redis does
    link = c.server.replication.link
    if link is not None and link.state != "connected":
        raise CommandError(NO_MASTER_LINK)
    if c.out and c.transport is not None:
        # Replies of this read that came before (REPLCONF's +OK) leave first.
        c.transport.write(b"".join(c.out))
        c.out.clear()
    c.server.replication.primary.psync(c, replid, offset)
    return BLOCKED  # the replica gets no reply but the sync itself


@command("sync", 1, "admin noscript no_async_loading no_multi", since="1.0.0", **_SRV)
def sync(c: Any, args: List[bytes]) -> Any:
    """Internal command used for replication."""
    return _start_sync(c, None, -1)


@command("psync", -3, "admin noscript no_async_loading no_multi", since="2.8.0", **_SRV)
def psync(c: Any, args: List[bytes]) -> Any:
    """Internal command used for replication."""
    try:
        offset = to_int(args[2])
    except CommandError:
        offset = -1  # as Redis: an offset that is not a number means a full resync
    return _start_sync(c, args[1], offset)


@command("replconf", -1, "admin noscript loading stale allow_busy", since="3.0.0", **_SRV)
def replconf(c: Any, args: List[bytes]) -> Any:
    """An internal command for configuring the replication stream."""
    if len(args) % 2 == 0:
        raise CommandError(SYNTAX)
    conf = getattr(c, "repl_conf", None)
    if conf is None:
        conf = c.repl_conf = {}
    for i in range(1, len(args), 2):
        option, value = args[i].lower(), args[i + 1]
        if option == b"listening-port":
            conf["port"] = to_int(value)
        elif option == b"ip-address":
            if len(value) >= 256:  # NET_HOST_STR_LEN: a hostname may be announced
                raise CommandError("ERR REPLCONF ip-address provided by replica instance is "
                                   f"too long: {len(value)} bytes")
            conf["ip"] = value.decode("latin-1")
        elif option == b"capa":
            if value.lower() in (b"eof", b"psync2"):
                conf[value.lower().decode()] = True
        elif option == b"ack":
            # No reply, ever: this arrives from a replica inside the stream's back channel.
            try:
                c.server.replication.primary.ack(c, to_int(value))
            except CommandError:
                pass
            return BLOCKED
        elif option == b"getack":
            getack = getattr(c.server.replication, "send_ack", None)
            if getack is not None:  # a replica (replica.py) answers its primary
                getack()
            return BLOCKED
        elif option in (b"rdb-only", b"rdb-filter-only"):
            pass  # redis-cli --rdb options: accepted, the transfer is the same
        else:
            raise CommandError("ERR Unrecognized REPLCONF option: "
                               + args[i].decode("utf-8", "replace"))
    return OK


@command("wait", 3, "noscript", since="3.0.0", group="generic")
def wait(c: Any, args: List[bytes]) -> Any:
    """Wait for the synchronous replication of all the write commands sent in the
    context of the current connection."""
    replication = c.server.replication
    if replication.role != "master":
        raise CommandError(WAIT_ON_REPLICA)
    numreplicas = to_int(args[1])
    timeout = to_int(args[2], "ERR timeout is not an integer or out of range")
    if timeout < 0:
        raise CommandError("ERR timeout is negative")
    return replication.primary.wait(c, numreplicas, timeout)

