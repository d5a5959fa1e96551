"""Sentinel-backed pools: shards discovered from, and kept current by, Sentinel.

``CacheClient(sentinels=["s1:26379", ...], services=["shard-a", ...])`` asks
the first sentinel that answers for each service's primary
(``SENTINEL get-master-addr-by-name``) and replicas (``SENTINEL replicas``).
Each service is a shard placed on the ring by its name, so a promotion never
moves keys. A daemon thread per sentinel subscribes to ``+switch-master`` and
hands each announcement to the client, which then writes to the new primary.
"""
from __future__ import annotations

import logging
import socket
import threading
from typing import Any, Callable, Dict, List, Optional

from ..protocol import ReplyError, encode_command
from .connection import Connection
from .errors import CacheError, ConnectionError
from .ring import ServerSpec, parse_servers
from .shards import Shard

__all__ = ["SentinelWatcher"]

log = logging.getLogger("distcache.sentinel")

#: Seconds between reconnection attempts to a sentinel that went away.
RECONNECT_DELAY = 0.5

SwitchCallback = Callable[[str, ServerSpec], Any]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class SentinelWatcher:
    """Discovery and ``+switch-master`` following for ``services``."""

    def __init__(self, sentinels: Any, services: List[str], timeout: float = 2.0,
                 password: Optional[str] = None) -> None:
        self.sentinels = parse_servers(sentinels)
        if not self.sentinels:
            raise ValueError("sentinels: at least one address is needed")
        self.services = [_text(s) for s in services]
        if not self.services:
            raise ValueError("services: at least one service name is needed")
        self.timeout = timeout
        self.password = password
        self._stopping = threading.Event()
        self._threads: List[threading.Thread] = []
        self._conns: Dict[str, Connection] = {}

    def _connect(self, sentinel: ServerSpec, timeout: Optional[float]) -> Connection:
        return Connection(sentinel, password=self.password, connect_timeout=self.timeout,
                          timeout=timeout).connect()

    def _ask(self, *command: Any) -> Any:
        """The first sentinel's answer to ``command``."""
        errors = []
        for sentinel in self.sentinels:
            try:
                conn = self._connect(sentinel, self.timeout)
            except CacheError as exc:
                errors.append(str(exc))
                continue
            try:
                reply = conn.request(encode_command(command))
            except CacheError as exc:
                errors.append(str(exc))
                continue
            finally:
                conn.close()
            if isinstance(reply, ReplyError) or reply is None:
                errors.append(f"{sentinel.address}: {reply!r}")
                continue
            return reply
        raise ConnectionError(f"no sentinel answered {_text(command[0])} "
                              f"{_text(command[1])}: {'; '.join(errors)}")

    def discover(self) -> List[Shard]:
        """One shard per service: its current primary and replicas."""
        shards = []
        for service in self.services:
            host, port = self._ask(b"SENTINEL", b"GET-MASTER-ADDR-BY-NAME", service)
            primary = ServerSpec(_text(host), int(port))
            replicas = []
            for fields in self._ask(b"SENTINEL", b"REPLICAS", service):
                info = {_text(k): _text(v) for k, v in zip(fields[::2], fields[1::2])}
                if "ip" in info and "port" in info:
                    replicas.append(ServerSpec(info["ip"], int(info["port"])))
            shards.append(Shard(primary, replicas, name=service, service=service))
        return shards

    # -- following promotions ------------------------------------------------------
    def start(self, on_switch: SwitchCallback) -> "SentinelWatcher":
        for sentinel in self.sentinels:
            thread = threading.Thread(target=self._follow, args=(sentinel, on_switch),
                                      daemon=True,
                                      name=f"distcache-sentinel-{sentinel.address}")
            self._threads.append(thread)
            thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        for conn in list(self._conns.values()):
            conn.close()
        for thread in self._threads:
            thread.join(self.timeout + 1.0)
        self._threads = []

    def _follow(self, sentinel: ServerSpec, on_switch: SwitchCallback) -> None:
        while not self._stopping.is_set():
            try:
                conn = self._connect(sentinel, 0.5)  # short reads: notice stop() soon
                self._conns[sentinel.address] = conn
                conn.request(encode_command((b"SUBSCRIBE", b"+switch-master")))
                while not self._stopping.is_set():
                    try:
                        message = conn.read_reply()
                    except socket.timeout:
                        continue
                    self._handle(message, on_switch)
            except (CacheError, OSError, ValueError, AttributeError) as exc:
                log.debug("sentinel %s: %s", sentinel.address, exc)
            finally:
                conn_now = self._conns.pop(sentinel.address, None)
                if conn_now is not None:
                    conn_now.close()
            self._stopping.wait(RECONNECT_DELAY)

    def _handle(self, message: Any, on_switch: SwitchCallback) -> None:
        # ["message", "+switch-master", "name old-ip old-port new-ip new-port"]
        if not isinstance(message, list) or len(message) != 3 or message[0] != b"message":
            return
        parts = _text(message[2]).split()
        if len(parts) != 5 or parts[0] not in self.services:
            return
        log.warning("sentinel: %s switched from %s:%s to %s:%s", *parts)
        on_switch(parts[0], ServerSpec(parts[3], int(parts[4])))
