"""What CLIENT LIST shows of a client, its address, and its socket's keepalive."""
from __future__ import annotations

import ipaddress
import logging
import socket
import time
from typing import Any, List, Optional

from .client_memory import REPLY_BLOCK, args_bytes, usage

log = logging.getLogger("distcache.server")


class ClientInfo:
    """CLIENT LIST's line (mixed into Client)."""

    #: Bytes of the queued MULTI commands' arguments, and how many of them that
    #: running sum counts (client_memory.multi_bytes).
    multi_mem = 0
    multi_counted = 0
    #: This client's bytes beyond the fixed part as last measured, and whether they
    #: count as a replica's (client_memory.ClientMemory).
    mem_extra = 0
    mem_replica = False

    def info_line(self, args: Optional[List[bytes]] = None) -> str:
        """One CLIENT LIST line, with Redis's fields; ``args``: the command being
        run, for the caller's own line (argv-mem)."""
        now = time.time()
        flags = "N"
        if self.in_multi:
            flags = "x"
        elif self.blocked:
            flags = "b"
        elif self.channels or self.patterns or self.shard_channels:
            flags = "P"
        elif self in self.server.monitoring.monitors:
            flags = "O"
        cmd = self.last_command.fullname if self.last_command is not None else "NULL"
        qbuf, assembled, unsent, total = usage(self)
        argv = sum(map(len, args)) if args else 0  # tot-mem adds a pointer each
        events = ("" if self.reading_paused else "r") + ("w" if unsent else "")
        return (f"id={self.id} addr={self.addr} laddr={self.laddr} fd={self.socket_fd()} "
                f"name={self.name.decode('utf-8', 'replace')} age={int(now - self.created)} "
                f"idle={int(time.monotonic() - self.last_active)} flags={flags} "
                f"db={self.db.id} sub={len(self.channels)} psub={len(self.patterns)} "
                f"ssub={len(self.shard_channels)} "
                f"multi={len(self.multi_queue) if self.in_multi else -1} qbuf={qbuf} "
                f"qbuf-free=0 argv-mem={argv} multi-mem={self.multi_mem} rbs=0 rbp=0 "
                f"obl={assembled} oll={-(-unsent // REPLY_BLOCK)} omem={unsent} "
                f"tot-mem={total + args_bytes(args) if args else total} "
                f"events={events} cmd={cmd} user={self.user.name.decode('utf-8', 'replace')} "
                f"redir={self.tracking.redirect if self.tracking else -1} "
                f"resp={3 if self.resp3 else 2} "
                f"lib-name={self.lib_name.decode('utf-8', 'replace')} "
                f"lib-ver={self.lib_ver.decode('utf-8', 'replace')}")

    def socket_fd(self) -> int:
        """The socket's file descriptor; -1 without one (Lua's client, the
        primary link's stand-in, a closed socket)."""
        transport = self.transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        try:
            return max(sock.fileno(), -1) if sock is not None else -1
        except (OSError, AttributeError, ValueError):
            return -1


def set_keepalive(sock: Any, interval: int) -> None:
    """TCP keepalive as Redis's anetKeepAlive sets it: the first probe after
    ``interval`` idle seconds, then every third of it, three before giving up."""
    if not hasattr(sock, "setsockopt"):  # no socket (test and benchmark transports)
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (("TCP_KEEPIDLE", interval), ("TCP_KEEPINTVL", max(interval // 3, 1)),
                            ("TCP_KEEPCNT", 3)):
            option = getattr(socket, name, None)
            if option is not None:
                sock.setsockopt(socket.IPPROTO_TCP, option, value)
    except OSError as exc:  # not a TCP socket, or refused
        log.debug("tcp-keepalive not applied: %s", exc)


def is_local_address(addr: str) -> bool:
    """Whether a client's ``addr`` (as CLIENT LIST shows it) is loopback or a socket file."""
    if not addr or not addr[0].isdigit() and not addr.startswith("["):
        return True  # a Unix socket's path (or none)
    host = addr.rsplit(":", 1)[0].strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _format_addr(addr: Any) -> str:
    if not addr:
        return ""
    if isinstance(addr, tuple):
        host, port = addr[0], addr[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return str(addr)

