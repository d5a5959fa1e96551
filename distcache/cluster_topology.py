"""What ``distcache cluster`` runs: shards (a primary and its replicas) and sentinels.

Ports are consecutive from the base port: shard *i*'s primary is
``BASE + i × (R + 1)`` and its R replicas (``--replicaof`` the primary) the
ports after it; with ``--sentinel``, three ``redis-sentinel`` processes take
the three ports after the last shard and monitor every shard as a service
named ``shard-I`` (quorum 2). Sentinels start once the replicas are linked,
so their first look at each primary already lists the replicas.
"""
from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, List, Optional, Tuple

from .client.health import tcp_ping
from .client.ring import ServerSpec

__all__ = ["NodeSpec", "Topology", "find_sentinel", "SENTINEL_MISSING"]

log = logging.getLogger("distcache.cluster")

SENTINELS = 3
QUORUM = 2
SENTINEL_MISSING = ("--sentinel needs the redis-sentinel program, which is not installed: "
                    "apt-get install redis-sentinel (Debian/Ubuntu; dnf install redis on "
                    "Fedora, brew install redis on macOS)")


def find_sentinel() -> Optional[str]:
    """The path of ``redis-sentinel``, or None."""
    return shutil.which("redis-sentinel")


def _ask(host: str, port: int, *command: Any) -> Any:
    """One command's reply on a fresh connection (1 s timeouts); None on failure."""
    from .client.connection import Connection
    from .client.errors import CacheError
    from .protocol import ReplyError, encode_command
    try:
        conn = Connection(ServerSpec(host, port), connect_timeout=1.0, timeout=1.0).connect()
    except (CacheError, OSError):
        return None
    try:
        reply = conn.request(encode_command(command))
    except (CacheError, OSError):
        return None
    finally:
        conn.close()
    return None if isinstance(reply, ReplyError) else reply


def answers_ping(host: str, port: int) -> bool:
    try:
        tcp_ping(ServerSpec(host, port), 1.0)
        return True
    except OSError:
        return False


def replica_linked(host: str, port: int) -> bool:
    """The replica on ``port`` has its replication link up."""
    info = _ask(host, port, b"INFO", b"replication")
    return isinstance(info, bytes) and b"master_link_status:up" in info


def _sentinel_ready(services: List[str], replicas: int) -> Callable[[str, int], bool]:
    def ready(host: str, port: int) -> bool:
        """The sentinel knows each service's replicas and the other sentinels."""
        for service in services:
            known = _ask(host, port, b"SENTINEL", b"REPLICAS", service)
            peers = _ask(host, port, b"SENTINEL", b"SENTINELS", service)
            if not isinstance(known, list) or len(known) < replicas or \
                    not isinstance(peers, list) or len(peers) < SENTINELS - 1:
                return False
        return True
    return ready


@dataclass
class NodeSpec:
    """One process of the cluster."""

    role: str  # "primary", "replica" or "sentinel"
    port: int
    data_dir: Path
    #: Flags after the cluster's server flags (a replica's --replicaof).
    flags: List[str] = field(default_factory=list)
    #: The whole argv, for processes that are not distcache servers.
    argv: Optional[List[str]] = None
    ready: Callable[[str, int], bool] = answers_ping
    #: The Sentinel service of the shard a server belongs to.
    service: Optional[str] = None


class Topology:
    """Ports, roles and the lines for clients of a cluster of shards."""

    def __init__(self, shards: int, base_port: int, data_dir: Path, client_host: str,
                 replicas: int = 0, sentinel: Optional[str] = None,
                 down_after_ms: int = 5000, failover_timeout_ms: int = 15000) -> None:
        if shards < 1:
            raise ValueError("--nodes must be at least 1")
        if replicas < 0:
            raise ValueError("--replicas must be 0 or more")
        if sentinel and not replicas:
            raise ValueError("--sentinel needs --replicas 1 or more (nothing to promote)")
        self.shards = shards
        self.replicas = replicas
        self.base_port = base_port
        self.data_dir = data_dir
        self.client_host = client_host
        self.sentinel = sentinel
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        if not 0 < base_port <= 65536 - self.port_count:
            raise ValueError("--base-port out of range")

    @property
    def port_count(self) -> int:
        return self.shards * (self.replicas + 1) + (SENTINELS if self.sentinel else 0)

    @property
    def services(self) -> List[str]:
        return [f"shard-{i}" for i in range(self.shards)]

    def _primary_port(self, shard: int) -> int:
        return self.base_port + shard * (self.replicas + 1)

    @property
    def sentinel_ports(self) -> List[int]:
        first = self.base_port + self.shards * (self.replicas + 1)
        return [first + i for i in range(SENTINELS)] if self.sentinel else []

    def _node_dir(self, port: int) -> Path:
        return self.data_dir / f"node-{port}"

    def stages(self) -> List[List[NodeSpec]]:
        """The servers (primaries, then replicas), then the sentinels: each
        stage is started once the one before it is ready."""
        servers: List[NodeSpec] = []
        for shard in range(self.shards):
            primary = self._primary_port(shard)
            service = self.services[shard] if self.sentinel else None
            servers.append(NodeSpec("primary", primary, self._node_dir(primary),
                                    service=service))
            for port in range(primary + 1, primary + 1 + self.replicas):
                servers.append(NodeSpec("replica", port, self._node_dir(port),
                                        ["--replicaof", self.client_host, str(primary)],
                                        ready=replica_linked, service=service))
        stages = [servers]
        if self.sentinel:
            ready = _sentinel_ready(self.services, self.replicas)
            stages.append([NodeSpec("sentinel", port, self.data_dir / f"sentinel-{port}",
                                    argv=[self.sentinel, self._sentinel_conf(port)],
                                    ready=ready) for port in self.sentinel_ports])
        return stages

    def restart_flags(self, spec: NodeSpec, down_for: float) -> Optional[List[str]]:
        """The flags to restart a dead server with; None: not yet.

        Under Sentinel a server comes back as a replica of its shard's
        current primary. A dead primary is restarted only once Sentinel has
        promoted a replica (or after down-after + failover-timeout): restarted
        at once, an empty primary would make its replicas drop their data.
        """
        if spec.service is None:
            return spec.flags
        current = self._current_primary(spec.service)
        if current is None:
            return spec.flags
        host, port = current
        if port != spec.port:  # one host: a port names a server (Sentinel gives IPs)
            return ["--replicaof", host, str(port)]
        if down_for * 1000 < self.down_after_ms + self.failover_timeout_ms:
            return None
        log.warning("Sentinel promoted no replica of %s; restarting %s:%d as its primary",
                    spec.service, host, port)
        return []

    def _current_primary(self, service: str) -> Optional[Tuple[str, int]]:
        for port in self.sentinel_ports:
            reply = _ask(self.client_host, port, b"SENTINEL", b"GET-MASTER-ADDR-BY-NAME",
                         service)
            if isinstance(reply, list) and len(reply) == 2:
                return reply[0].decode(), int(reply[1])
        return None

    def _sentinel_conf(self, port: int) -> str:
        return str(self.data_dir / f"sentinel-{port}" / "sentinel.conf")

    def write_sentinel_configs(self) -> None:
        """Fresh configs (Sentinel rewrites its file with what it learns; a new
        cluster must not start from an old failover's state)."""
        for port in self.sentinel_ports:
            conf = Path(self._sentinel_conf(port))
            conf.parent.mkdir(parents=True, exist_ok=True)
            lines = [f"port {port}", f"bind {self.client_host}", f"dir {conf.parent}",
                     "sentinel resolve-hostnames yes"]  # --host may be a name
            for shard, service in enumerate(self.services):
                lines += [f"sentinel monitor {service} {self.client_host} "
                          f"{self._primary_port(shard)} {QUORUM}",
                          f"sentinel down-after-milliseconds {service} {self.down_after_ms}",
                          f"sentinel failover-timeout {service} {self.failover_timeout_ms}"]
            conf.write_text("\n".join(lines) + "\n")

    def client_lines(self) -> List[str]:
        """What to give the clients: the environment line, and with replicas
        the fixed pool and the Sentinel form as Python."""
        host = self.client_host
        if not self.replicas:
            return ["DISTCACHE_SERVERS=" + ",".join(
                f"{host}:{self._primary_port(i)}" for i in range(self.shards))]
        pool = []
        for shard in range(self.shards):
            primary = self._primary_port(shard)
            replicas = "+".join(f"{host}:{p}" for p in
                                range(primary + 1, primary + 1 + self.replicas))
            pool.append(f"{host}:{primary} replicas={replicas}")
        lines = [f"DISTCACHE_SERVERS='{','.join(pool)}'",
                 f"CacheClient({pool!r})".replace("'", '"')]
        if self.sentinel:
            sentinels = [f"{host}:{port}" for port in self.sentinel_ports]
            lines.append(f"CacheClient(sentinels={sentinels!r}, services={self.services!r})"
                         .replace("'", '"'))
        return lines
