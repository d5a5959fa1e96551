"""``distcache cluster``: starts N nodes that answer PING, prints the servers
line, restarts a SIGKILLed node, and stops every node on SIGTERM/SIGINT."""
from __future__ import annotations

import os
import random
import select
import signal
import socket
import subprocess
import sys
import time

import pytest
import redis

from distcache.client.ring import parse_servers
from dist_helpers import wait_until
from servers import ROOT


def _free_base_port(count: int) -> int:
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 60000 - count)
        socks = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no run of free ports")


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISTCACHE_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _read_line(proc: subprocess.Popen, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    buffer = b""
    fd = proc.stdout.fileno()
    while time.monotonic() < deadline and not buffer.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buffer += chunk
    return buffer.decode()


def _pid_of(port: int):
    try:
        client = redis.Redis(port=port, socket_timeout=2, socket_connect_timeout=2)
        try:
            return int(client.info("server")["process_id"])
        finally:
            client.close()
    except (redis.RedisError, OSError):
        return None


def _pid(port: int) -> int:
    """The pid of the node on ``port``, polling (a busy machine can be slow)."""
    found = []
    assert wait_until(lambda: found.append(_pid_of(port)) or found[-1] is not None, 30)
    return found[-1]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # a zombie not yet reaped by its parent counts as gone
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


class Cluster:
    def __init__(self, tmp_path, nodes: int, *flags: str, persistence: bool = False) -> None:
        self.base = _free_base_port(nodes)
        self.nodes = nodes
        self.tmp_path = tmp_path
        self.log = open(tmp_path / "cluster.err", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "distcache", "cluster", "--nodes", str(nodes),
             "--base-port", str(self.base), "--dir", str(tmp_path / "data"),
             "--save", "", *(["--appendonly", "yes", "--appendfsync", "always"] if persistence
                             else ["--appendonly", "no"]), *flags],
            stdout=subprocess.PIPE, stderr=self.log, env=_env(), cwd=str(tmp_path))

    def stderr(self) -> str:
        self.log.flush()
        return (self.tmp_path / "cluster.err").read_text(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.log.close()


@pytest.fixture
def cluster(tmp_path):
    clusters = []

    def start(nodes: int = 2, *flags: str, persistence: bool = False) -> Cluster:
        clusters.append(Cluster(tmp_path, nodes, *flags, persistence=persistence))
        return clusters[-1]
    yield start
    for c in clusters:
        c.close()


def test_cluster_starts_nodes_restarts_a_killed_one_and_stops_on_sigterm(cluster):
    c = cluster(3, persistence=True)
    line = _read_line(c.proc, 60)
    expected = ",".join(f"127.0.0.1:{c.base + i}" for i in range(3))
    assert line.strip() == f"DISTCACHE_SERVERS={expected}", c.stderr()
    servers = parse_servers(line.strip().split("=", 1)[1])
    pids = [_pid(s.port) for s in servers]
    assert all(pids) and len(set(pids)) == 3
    for s in servers:
        assert redis.Redis(port=s.port, socket_timeout=5).ping()
        assert (c.tmp_path / "data" / f"node-{s.port}").is_dir()

    victim = redis.Redis(port=servers[1].port, socket_timeout=5)
    assert victim.set("survives", "the crash")
    victim.close()

    # A crashed node comes back (new pid, same port) with its persisted data.
    os.kill(pids[1], signal.SIGKILL)
    assert wait_until(lambda: _pid_of(servers[1].port) not in (None, pids[1]), 30), c.stderr()
    assert "died (killed by SIGKILL)" in c.stderr()
    assert "restarted" in c.stderr()
    new_pids = [_pid(s.port) for s in servers]
    assert new_pids[0] == pids[0] and new_pids[2] == pids[2]
    assert redis.Redis(port=servers[1].port, socket_timeout=5).get("survives") == b"the crash"

    c.proc.send_signal(signal.SIGTERM)
    assert c.proc.wait(40) == 0, c.stderr()
    assert all(wait_until(lambda pid=pid: _gone(pid), 10) for pid in new_pids)
    assert "all nodes stopped" in c.stderr()


def test_cluster_forwards_sigint_and_passes_server_flags(cluster):
    c = cluster(1, "--maxmemory", "10mb")
    line = _read_line(c.proc, 60)
    assert line.strip() == f"DISTCACHE_SERVERS=127.0.0.1:{c.base}", c.stderr()
    client = redis.Redis(port=c.base, socket_timeout=5)
    assert client.config_get("maxmemory")["maxmemory"] == str(10 * 1024 * 1024)
    pid = _pid(c.base)
    client.close()
    c.proc.send_signal(signal.SIGINT)
    assert c.proc.wait(40) == 0, c.stderr()
    assert wait_until(lambda: _gone(pid), 10)


def test_cluster_leaves_a_node_stopped_by_shutdown_alone(cluster):
    c = cluster(2)
    line = _read_line(c.proc, 60)
    assert line.startswith("DISTCACHE_SERVERS="), c.stderr()
    for port in (c.base, c.base + 1):
        try:
            redis.Redis(port=port, socket_timeout=10).shutdown(nosave=True)
        except redis.ConnectionError:
            pass  # the server closes the connection as it exits
    assert c.proc.wait(40) == 0, c.stderr()
    assert "not restarting" in c.stderr()
    assert "restarted" not in c.stderr()


def test_cluster_fails_cleanly_when_a_port_is_taken(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "distcache", "cluster", "--nodes", "1", "--base-port",
             str(port), "--dir", str(tmp_path / "data"), "--save", "", "--appendonly", "no",
             "--start-timeout", "20"],
            capture_output=True, text=True, env=_env(), timeout=60)
    assert proc.returncode == 1
    assert "DISTCACHE_SERVERS" not in proc.stdout
    assert f"127.0.0.1:{port}" in proc.stderr


def test_cluster_usage_errors():
    run = lambda *args: subprocess.run([sys.executable, "-m", "distcache", "cluster", *args],
                                       capture_output=True, text=True, env=_env(), timeout=60)
    help_ = run("--help")
    assert help_.returncode == 0 and "--base-port" in help_.stdout
    assert run("--nodes", "0").returncode == 2
    assert run("--port", "2050").returncode == 2
    assert run("--nodes").returncode == 2
