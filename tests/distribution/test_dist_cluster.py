"""``distcache cluster``: starts N nodes that answer PING, prints the servers
line, restarts a SIGKILLed node, and stops every node on SIGTERM/SIGINT."""
from __future__ import annotations

import os
import random
import select
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
import redis

from distcache import CacheClient

from distcache.client.ring import parse_servers
from dist_helpers import wait_until
from servers import ROOT


def _ephemeral_start() -> int:
    """The first port the kernel hands out for bind(0) and outgoing connections."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as fh:
            return int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _free_base_port(count: int) -> int:
    """A run of ``count`` free ports below the ephemeral range: the cluster binds them
    seconds later (its sentinels last), and at -n 4 a port in that range was taken
    meanwhile by another test's free_port() or a client's source port."""
    rng = random.Random()
    top = max(_ephemeral_start(), 12000)
    for _ in range(200):
        base = rng.randrange(10000, top - count)
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
    def __init__(self, tmp_path, nodes: int, *flags: str, persistence: bool = False,
                 ports: int = 0) -> None:
        self.base = _free_base_port(ports or nodes)
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

    def start(nodes: int = 2, *flags: str, persistence: bool = False, ports: int = 0) -> Cluster:
        clusters.append(Cluster(tmp_path, nodes, *flags, persistence=persistence, ports=ports))
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
    assert run("--port", "70000").returncode == 2
    assert run("--nodes", "2", "--sentinel").returncode == 2  # no replica to promote
    assert run("--nodes").returncode == 2


def test_cluster_sentinel_missing_says_how_to_install(tmp_path):
    env = dict(_env(), PATH=str(tmp_path))  # no redis-sentinel on this PATH
    proc = subprocess.run([sys.executable, "-m", "distcache", "cluster", "--nodes", "1",
                           "--replicas", "1", "--sentinel", "--dir", str(tmp_path / "d")],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 1
    assert "apt-get install redis-sentinel" in proc.stderr
    assert not (tmp_path / "d").exists()


def _read_lines(proc: subprocess.Popen, count: int, timeout: float) -> list:
    deadline = time.monotonic() + timeout
    lines: list = []
    while len(lines) < count and time.monotonic() < deadline:
        chunk = _read_line(proc, max(0.1, deadline - time.monotonic()))
        if not chunk:
            break
        lines += chunk.splitlines()
    return lines


def _replication(port: int) -> dict:
    try:
        return redis.Redis(port=port, socket_timeout=5).info("replication")
    except (redis.RedisError, OSError):
        return {}


def test_cluster_with_replicas_prints_the_pool(cluster):
    c = cluster(2, "--start-timeout", "100", "--replicas", "2", ports=6)
    lines = _read_lines(c.proc, 2, 110)
    b = c.base
    pool = [f"127.0.0.1:{b} replicas=127.0.0.1:{b + 1}+127.0.0.1:{b + 2}",
            f"127.0.0.1:{b + 3} replicas=127.0.0.1:{b + 4}+127.0.0.1:{b + 5}"]
    assert lines == [f"DISTCACHE_SERVERS='{','.join(pool)}'",
                     "CacheClient([" + ", ".join(f'"{p}"' for p in pool) + "])"], c.stderr()
    for replica, primary in ((b + 1, b), (b + 2, b), (b + 4, b + 3), (b + 5, b + 3)):
        info = _replication(replica)  # linked before the line was printed
        assert (info["role"], info["master_port"], info["master_link_status"]) == (
            "slave", primary, "up")
    with CacheClient(pool, health_interval=None) as client:
        assert client.set("k", "v", replicas=2) == 2


@pytest.mark.skipif(not shutil.which("redis-sentinel"),
                    reason="needs redis-sentinel (apt-get install redis-sentinel)")
def test_cluster_with_sentinel_fails_over_and_restarts_the_old_primary_as_replica(cluster):
    c = cluster(2, "--start-timeout", "100", "--replicas", "1", "--sentinel",
                "--down-after-ms", "1000", "--failover-timeout-ms", "5000", ports=7)
    b = c.base
    lines = _read_lines(c.proc, 3, 120)
    sentinels = [f"127.0.0.1:{b + 4 + i}" for i in range(3)]
    assert len(lines) == 3, c.stderr()
    assert lines[2] == ("CacheClient(sentinels=[" + ", ".join(f'"{s}"' for s in sentinels)
                        + '], services=["shard-0", "shard-1"])')
    client = CacheClient(sentinels=sentinels, services=["shard-0", "shard-1"],
                         health_interval=0.4, timeout=2.0, connect_timeout=1.0,
                         failover_timeout=30)
    try:
        keys = [f"key:{i}" for i in range(100)]
        for key in keys:
            assert client.set(key, key, replicas=1) == 1
        mine = [k for k in keys if client.shard_for(k).name == "shard-0"]
        assert client.server_for(mine[0]) == f"127.0.0.1:{b}"
        old_pid = _pid(b)
        os.kill(old_pid, signal.SIGKILL)
        assert client.set(mine[0], "after") is True  # waits for Sentinel's promotion
        assert client.server_for(mine[0]) == f"127.0.0.1:{b + 1}"
        assert client.get(mine[0]) == "after"
        assert all(client.get(k) == k for k in keys if k != mine[0])
        # The supervisor restarts the old primary as a replica of the promoted one.
        assert wait_until(lambda: _replication(b).get("master_port") == b + 1 and
                          _replication(b).get("master_link_status") == "up", 60, 0.2), c.stderr()
        assert _pid(b) != old_pid
        assert "as a replica of 127.0.0.1:%d" % (b + 1) in c.stderr()
        assert redis.Redis(port=b, socket_timeout=5).get(mine[1]) is not None
    finally:
        client.close()
    pids = [_pid(port) for port in range(b, b + 7)]
    c.close()
    assert c.proc.returncode == 0
    assert all(_gone(pid) for pid in pids)


def test_topology_ports_roles_and_lines(tmp_path):
    from distcache.cluster_topology import Topology
    t = Topology(2, 7000, tmp_path, "127.0.0.1", replicas=2, sentinel="/bin/redis-sentinel",
                 down_after_ms=700)
    servers, sentinels = t.stages()
    assert [(s.role, s.port, s.flags) for s in servers] == [
        ("primary", 7000, []), ("replica", 7001, ["--replicaof", "127.0.0.1", "7000"]),
        ("replica", 7002, ["--replicaof", "127.0.0.1", "7000"]),
        ("primary", 7003, []), ("replica", 7004, ["--replicaof", "127.0.0.1", "7003"]),
        ("replica", 7005, ["--replicaof", "127.0.0.1", "7003"])]
    assert [s.service for s in servers] == ["shard-0"] * 3 + ["shard-1"] * 3
    assert [s.port for s in sentinels] == [7006, 7007, 7008]
    assert not (tmp_path / "sentinel-7006").exists()  # written by run(), not by planning
    t.write_sentinel_configs()
    conf = (tmp_path / "sentinel-7006" / "sentinel.conf").read_text()
    assert "sentinel monitor shard-1 127.0.0.1 7003 2" in conf
    assert "sentinel down-after-milliseconds shard-0 700" in conf
    assert sentinels[0].argv == ["/bin/redis-sentinel", str(tmp_path / "sentinel-7006" /
                                                           "sentinel.conf")]
    plain = Topology(3, 7000, tmp_path, "127.0.0.1")
    assert plain.client_lines() == [
        "DISTCACHE_SERVERS=127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002"]
    assert plain.restart_flags(plain.stages()[0][0], 0.0) == []  # no Sentinel: as it was
    with pytest.raises(ValueError, match="out of range"):
        Topology(2, 65530, tmp_path, "127.0.0.1", replicas=1, sentinel="x")
    with pytest.raises(ValueError, match="--replicas 1 or more"):
        Topology(2, 7000, tmp_path, "127.0.0.1", sentinel="x")
