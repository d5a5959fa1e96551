"""``distcache cluster``: run a local cluster of server processes under a supervisor.

    distcache cluster --nodes 3 [--replicas R [--sentinel]] [--base-port 2050]
                      [--dir ./data] [server flags ...]

Starts one ``distcache server`` per node on consecutive ports, each with its
own data directory (``DIR/node-PORT/``, output in ``DIR/node-PORT/node.log``),
prints the ``DISTCACHE_SERVERS=...`` line for clients once every node answers
PING, restarts a node that crashes (with backoff: 0.5 s doubling to 30 s,
reset once it has stayed up 30 s; a node that exits with code 0, e.g. after
SHUTDOWN, is left stopped, and the supervisor exits once all have), and on
SIGTERM/SIGINT forwards the signal to the nodes and waits for them to exit.

Clients shard keys over the nodes with ketama (``distcache.client.ring``);
the nodes do not talk to each other. With ``--replicas R`` each node is a
shard of a primary and R replicas, and ``--sentinel`` adds three
``redis-sentinel`` processes (``distcache.cluster_topology`` lays them out).
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any, List, Optional

from .cli import SUBCOMMANDS
from .cluster_topology import SENTINEL_MISSING, NodeSpec, Topology, find_sentinel

log = logging.getLogger("distcache.cluster")

USAGE = """usage: distcache cluster [--nodes N] [--replicas R] [--sentinel] [--base-port PORT]
                         [--dir DIR] [--host HOST] [--start-timeout S] [server flags ...]

Run N distcache servers on ports PORT, PORT+1, ... (one per core by default),
each with its data in DIR/node-PORT/, restart any that dies, and stop them
all on SIGTERM/SIGINT. Other flags (--appendonly yes, --save "", --maxmemory
100mb, ...) are passed to every server.

With --replicas R each node is a shard: a primary and R replicas started with
--replicaof, on the ports after it. --sentinel adds three redis-sentinel
processes on the next ports, monitoring the shards as services shard-0, ...

options:
  --nodes N          number of shards (default: os.cpu_count() = {cpus})
  --replicas R       replicas per shard (default 0)
  --sentinel         also run 3 redis-sentinel processes (apt-get install redis-sentinel)
  --down-after-ms MS      Sentinel's down-after-milliseconds (default 5000)
  --failover-timeout-ms MS  Sentinel's failover-timeout (default 15000)
  --base-port PORT   port of the first node (default 2050; also --port)
  --dir DIR          parent of the node data directories (default ./data)
  --host HOST        address the nodes listen on and clients use (default 127.0.0.1)
  --start-timeout S  seconds to wait for the nodes to be ready (default 30): PING,
                     replicas linked, sentinels knowing the replicas and each other
"""

RESTART_BACKOFF = 0.5
RESTART_BACKOFF_MAX = 30.0
STABLE_AFTER = 30.0
STOP_TIMEOUT = 30.0
POLL = 0.1


def _set_pdeathsig() -> None:  # pragma: no cover - runs in the child
    """Linux: the node gets SIGTERM if the supervisor dies without stopping it."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Node:
    """One supervised server process."""

    def __init__(self, port: int, host: str, data_dir: Path, extra: List[str],
                 spec: Optional[NodeSpec] = None) -> None:
        self.port = port
        self.host = host
        self.data_dir = data_dir
        self.extra = extra
        self.spec = spec or NodeSpec("primary", port, data_dir)
        self.flags = self.spec.flags  # a restart under Sentinel changes --replicaof
        self.died_at = 0.0
        self.proc: Optional[subprocess.Popen] = None
        self.started_at = 0.0
        self.backoff = RESTART_BACKOFF
        self.restart_at: Optional[float] = None
        self.restarts = 0
        self.finished = False  # exited by itself with code 0 (SHUTDOWN): not restarted

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def argv(self) -> List[str]:
        if self.spec.argv is not None:
            return self.spec.argv
        return [sys.executable, "-m", "distcache", "server", "--port", str(self.port),
                "--bind", self.host, "--dir", str(self.data_dir), *self.extra, *self.flags]

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        logfile: IO[bytes] = open(self.data_dir / "node.log", "ab")
        try:
            self.proc = subprocess.Popen(
                self.argv(), cwd=str(self.data_dir), stdin=subprocess.DEVNULL,
                stdout=logfile, stderr=subprocess.STDOUT,
                # Own session: a terminal's Ctrl-C reaches only the supervisor,
                # which forwards it once.
                start_new_session=True,
                preexec_fn=_set_pdeathsig if sys.platform.startswith("linux") else None)
        finally:
            logfile.close()
        self.started_at = time.monotonic()
        self.restart_at = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signum: int) -> None:
        if self.alive():
            try:
                self.proc.send_signal(signum)  # type: ignore[union-attr]
            except ProcessLookupError:  # pragma: no cover - exited meanwhile
                pass


class Cluster:
    """Supervises the nodes; :meth:`run` blocks until stopped by a signal."""

    def __init__(self, nodes: int, base_port: int, data_dir: Path, host: str = "127.0.0.1",
                 extra: Optional[List[str]] = None, start_timeout: float = 30.0,
                 **topology: Any) -> None:
        self.host = host
        self.client_host = "127.0.0.1" if host in ("0.0.0.0", "*", "") else host
        self.topology = Topology(nodes, base_port=base_port, data_dir=data_dir,
                                 client_host=self.client_host, **topology)
        self.stages = [[Node(spec.port, host, spec.data_dir, extra or [], spec) for spec in stage]
                       for stage in self.topology.stages()]
        self.nodes = [node for stage in self.stages for node in stage]
        self.start_timeout = start_timeout
        self.stop_signal: Optional[int] = None

    @property
    def servers_line(self) -> str:
        return "\n".join(self.topology.client_lines())

    def _on_signal(self, signum: int, frame: object) -> None:
        if self.stop_signal is None:
            self.stop_signal = signum

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.topology.write_sentinel_configs()
            deadline = time.monotonic() + self.start_timeout
            for stage in self.stages:  # replicas linked before the sentinels look
                for node in stage:
                    node.start()
                    log.info("%s %s started (pid %d, data %s)", node.spec.role, node.address,
                             node.proc.pid, node.data_dir)
                if not self._wait_ready(stage, deadline):  # failed, or a signal came first
                    return self._stop(code=0 if self.stop_signal else 1)
            print(self.servers_line, flush=True)
            log.info("cluster of %d processes ready; stop with SIGTERM or Ctrl-C",
                     len(self.nodes))
            while self.stop_signal is None:
                self._supervise()
                if all(node.finished for node in self.nodes):
                    log.info("every node has exited cleanly")
                    return 0
                time.sleep(POLL)
            return self._stop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _wait_ready(self, nodes: List[Node], deadline: float) -> bool:
        pending = list(nodes)
        while pending and self.stop_signal is None:
            for node in list(pending):
                if not node.alive():
                    log.error("node %s exited with code %s while starting; see %s",
                              node.address, node.proc.returncode,  # type: ignore[union-attr]
                              node.data_dir / "node.log")
                    return False
                if node.spec.ready(self.client_host, node.port):
                    pending.remove(node)
            if pending:
                if time.monotonic() > deadline:
                    log.error("nodes %s were not ready (PING, replication link, sentinels "
                              "knowing each other) within %.0f s",
                              ", ".join(n.address for n in pending), self.start_timeout)
                    return False
                time.sleep(POLL)
        return self.stop_signal is None

    def _supervise(self) -> None:
        now = time.monotonic()
        for node in self.nodes:
            if node.restart_at is not None:
                if now >= node.restart_at and self.stop_signal is None:
                    flags = self.topology.restart_flags(node.spec, now - node.died_at)
                    if flags is None:  # waiting for Sentinel to promote a replica
                        continue
                    node.flags = flags
                    node.restarts += 1
                    node.start()
                    log.warning("node %s restarted (pid %d, restart #%d%s)", node.address,
                                node.proc.pid, node.restarts,  # type: ignore[union-attr]
                                f" as a replica of {flags[1]}:{flags[2]}" if flags else "")
                continue
            if node.finished or node.alive():
                continue
            code = node.proc.returncode  # type: ignore[union-attr]
            if code == 0:
                node.finished = True
                log.warning("node %s exited cleanly (SHUTDOWN?); not restarting it",
                            node.address)
                continue
            if now - node.started_at >= STABLE_AFTER:
                node.backoff = RESTART_BACKOFF
            delay = node.backoff
            node.died_at = now
            node.backoff = min(node.backoff * 2, RESTART_BACKOFF_MAX)
            node.restart_at = now + delay
            log.warning("node %s died (%s); restarting in %.1f s", node.address,
                        _describe_exit(code), delay)

    def _stop(self, code: int = 0) -> int:
        signum = self.stop_signal or signal.SIGTERM
        log.info("stopping %d nodes (%s)", len(self.nodes), signal.Signals(signum).name)
        for node in self.nodes:
            node.signal(signum)
        deadline = time.monotonic() + STOP_TIMEOUT
        for node in self.nodes:
            if node.proc is None:
                continue
            try:
                node.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("node %s did not stop in %.0f s; killing it", node.address,
                          STOP_TIMEOUT)
                node.proc.kill()
                node.proc.wait()
                code = code or 1
        log.info("all nodes stopped")
        return code


def _describe_exit(code: Optional[int]) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _take(argv: List[str], index: int, flag: str) -> str:
    if index + 1 >= len(argv):
        raise ValueError(f"{flag} needs a value")
    return argv[index + 1]


def main(argv: List[str]) -> int:
    cpus = os.cpu_count() or 1
    nodes, base_port, data_dir, host, start_timeout = cpus, 2050, "./data", "127.0.0.1", 30.0
    topology: dict = {}
    extra: List[str] = []
    i = 0
    try:
        while i < len(argv):
            arg = argv[i]
            name, eq, inline = arg.partition("=")
            value = (lambda: inline) if eq else (lambda: _take(argv, i, name))
            if arg in ("-h", "--help"):
                print(USAGE.format(cpus=cpus))
                return 0
            if name in ("--nodes", "-n"):
                nodes = int(value())
            elif name in ("--base-port", "--port"):
                base_port = int(value())
            elif name == "--replicas":
                topology["replicas"] = int(value())
            elif arg == "--sentinel":
                topology["sentinel"] = find_sentinel() or SENTINEL_MISSING
                i += 1
                continue
            elif name in ("--down-after-ms", "--failover-timeout-ms"):
                topology[name[2:].replace("-", "_")] = int(value())
            elif name == "--dir":
                data_dir = value()
            elif name in ("--host", "--bind"):
                host = value()
            elif name == "--start-timeout":
                start_timeout = float(value())
            else:
                extra.append(arg)
                i += 1
                continue
            i += 1 if eq else 2
        cluster = Cluster(nodes, base_port, Path(data_dir).resolve(), host, extra,
                          start_timeout, **topology)
        if topology.get("sentinel") == SENTINEL_MISSING:
            print(f"distcache cluster: {SENTINEL_MISSING}", file=sys.stderr)
            return 1
    except ValueError as exc:
        print(f"distcache cluster: {exc}\n\n{USAGE.format(cpus=cpus)}", file=sys.stderr)
        return 2
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(asctime)s cluster: %(message)s")
    return cluster.run()


SUBCOMMANDS["cluster"] = main
