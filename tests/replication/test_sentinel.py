"""Redis Sentinel 7.0, unmodified, over distcache: a primary, two replicas, three sentinels.

Sentinel discovers the replicas (INFO) and the other sentinels (``__sentinel__:hello``),
fails over when the primary is SIGKILLed (writes WAIT confirmed survive), repoints the
other replica, turns the restarted old primary into a replica, and redis-py's Sentinel
client follows. Skips without redis-sentinel.
"""
from __future__ import annotations

import threading

import pytest
import redis
from redis.sentinel import Sentinel

from replica_helpers import connect, wait_link_up
from servers import REDIS_SENTINEL as SENTINEL
from servers import SentinelProcess, as_map, distcache_server, free_ports, wait_until

pytestmark = pytest.mark.skipif(not SENTINEL, reason="redis-sentinel is not installed")
NAME = "mymaster"


def sentinel_conf(port: int, primary_port: int) -> str:
    """What a user writes (docs/replication.md has the same, with a longer
    failover-timeout). down-after-milliseconds 5000, not 1000: at -n 4 on 2 busy
    cores a process can miss a PING for a second, and a sentinel that then saw the
    just-promoted primary down started a second failover (to the other replica), so
    the old primary followed another port than the test's; failover-timeout 15000
    lets a PyPy replica under load finish its promotion."""
    return (f"port {port}\nbind 127.0.0.1\n"
            f"sentinel monitor {NAME} 127.0.0.1 {primary_port} 2\n"
            f"sentinel down-after-milliseconds {NAME} 5000\n"
            f"sentinel failover-timeout {NAME} 15000\n"
            f"sentinel parallel-syncs {NAME} 1\n")


def _server(tmp_path, name, port, *flags):
    conf = tmp_path / f"{name}.conf"
    conf.touch()
    return distcache_server(tmp_path / name, "--repl-diskless-sync-delay", "0",
                            "--config", str(conf), *flags, port=port)


class Writer(threading.Thread):
    """Writes keys one by one, each followed by WAIT 1; remembers what WAIT confirmed."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis(port=port, socket_timeout=5)
        self.confirmed = []
        self.stop = False

    def run(self) -> None:
        i = 0
        while not self.stop:
            try:
                self.client.set(f"w:{i}", i)
                if self.client.execute_command("WAIT", 1, 1000) >= 1:
                    self.confirmed.append(i)
            except redis.RedisError:
                return  # the primary died
            i += 1


def test_sentinel_fails_over_a_distcache_primary(tmp_path):
    pp, r1p, r2p, *sports = free_ports(6)
    old = _server(tmp_path, "p", pp).start()
    replicas = {port: _server(tmp_path, f"r{port}", port, "--replicaof", "127.0.0.1",
                              str(pp)).start() for port in (r1p, r2p)}
    sentinels = []
    try:
        for port in replicas:
            wait_link_up(connect(replicas[port]))
        for sport in sports:
            conf = tmp_path / f"sentinel-{sport}" / "sentinel.conf"
            conf.parent.mkdir()
            conf.write_text(sentinel_conf(sport, pp))
            sentinels.append(SentinelProcess(conf, sport).start())
        watchers = [redis.Redis(port=s, decode_responses=True) for s in sports]

        def discovered():
            for s in watchers:
                seen = map(as_map, s.execute_command("SENTINEL", "REPLICAS", NAME))
                ok = {int(x["port"]) for x in seen if x["master-link-status"] == "ok"}
                if ok != set(replicas) or len(s.execute_command("SENTINEL", "SENTINELS",
                                                                NAME)) != 2:
                    return False
            return True
        wait_until(discovered, 60, message="sentinels see both replicas and each other")

        client = Sentinel([("127.0.0.1", s) for s in sports], socket_timeout=5)
        master = client.master_for(NAME, socket_timeout=5)
        master.set("before", "1")
        writer = Writer(pp)
        writer.start()
        wait_until(lambda: len(writer.confirmed) >= 50, 30, message="confirmed writes")
        old.kill()
        writer.join(10)

        new_port = int(wait_until(lambda: (lambda a: a[1] if a[1] != str(pp) else None)(
            watchers[0].execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", NAME)),
            60, message="failover"))
        assert new_port in replicas
        new = connect(replicas[new_port])
        assert new.info("replication")["role"] == "master"
        missing = [i for i in writer.confirmed if new.get(f"w:{i}") != str(i).encode()]
        assert not missing, f"WAIT-confirmed writes lost: {missing[:10]}"
        # The other replica now follows the new primary.
        other_port = next(port for port in replicas if port != new_port)
        other = connect(replicas[other_port])
        wait_until(lambda: other.info("replication").get("master_port") == new_port
                   and other.info("replication")["master_link_status"] == "up", 60,
                   message="the other replica repointed")
        # It continued the shared history from the promoted one (PSYNC2, replid2).
        assert new.info("stats")["sync_partial_ok"] == 1
        # redis-py's Sentinel client follows the failover.
        master = client.master_for(NAME, socket_timeout=5)
        wait_until(lambda: _try(lambda: master.set("after", "2")), 30,
                   message="master_for writes to the new primary")
        wait_until(lambda: client.slave_for(NAME, socket_timeout=5).get("after") == b"2",
                   30, message="slave_for reads the new primary's write")
        # The old primary comes back (empty: no persistence) and becomes a replica.
        old.start()
        back = connect(old)
        try:
            wait_until(lambda: back.info("replication").get("master_port") == new_port
                       and back.info("replication")["master_link_status"] == "up", 60,
                       message="the old primary converted to a replica")
        except AssertionError as exc:  # what sentinel and the old primary did, to judge
            raise AssertionError(f"{exc}\n{back.info('replication')}\n"
                                 + _logs({"old primary": old, **{
                                     f"sentinel {s.port}": s for s in sentinels}})) from None
        wait_until(lambda: back.get("after") == b"2", 20, message="the old primary synced")
        for s in sentinels:
            assert "-failover-abort" not in s.log(), s.log()
    finally:
        for proc in [*sentinels, *replicas.values(), old]:
            proc.stop()


def _logs(procs, lines: int = 60) -> str:
    """The last ``lines`` of each process's log, named."""
    return "\n".join(f"--- {name}:\n" + "\n".join(proc.log().splitlines()[-lines:])
                     for name, proc in procs.items())


def _try(action):
    try:
        return action() or True
    except redis.RedisError:
        return False
