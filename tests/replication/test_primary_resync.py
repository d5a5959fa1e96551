"""Partial resync (+CONTINUE), backlog overflow, WAIT and the replica output limit,
with a real redis-server replica. A replica is frozen with SIGSTOP while its link is
cut, so the writes in between certainly happen before it reconnects."""
from __future__ import annotations

import os
import signal
import time
from contextlib import contextmanager

import redis

from repl_helpers import assert_same_data, info, wait_synced
from servers import wait_until


def client(proc) -> redis.Redis:
    return redis.Redis(port=proc.port, socket_timeout=30)


@contextmanager
def frozen(proc):
    os.kill(proc.proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(proc.proc.pid, signal.SIGCONT)


def stats(p: redis.Redis) -> tuple:
    s = info(p, "stats")
    return s["sync_full"], s["sync_partial_ok"], s["sync_partial_err"]


def test_partial_resync_after_client_kill(primary, start_replica):
    p = client(primary)
    replica_proc = start_replica(primary.port)
    replica = client(replica_proc)
    p.set("before", "1")
    wait_synced(p, replica)
    with frozen(replica_proc):
        assert p.execute_command("CLIENT", "KILL", "TYPE", "replica") == 1
        wait_until(lambda: info(p)["connected_slaves"] == 0, 10, message="link dropped")
        for i in range(200):
            p.set(f"missed:{i}", i)
        p.lpush("missed-list", *range(50))
    wait_synced(p, replica)
    assert stats(p) == (1, 1, 0)
    assert "Successful partial resynchronization with master" in replica_proc.log()
    assert assert_same_data(p, replica) == 202


def test_backlog_overflow_means_a_full_sync(primary, start_replica):
    p = client(primary)
    p.config_set("repl-backlog-size", "16kb")
    replica_proc = start_replica(primary.port)
    replica = client(replica_proc)
    wait_synced(p, replica)
    with frozen(replica_proc):
        p.execute_command("CLIENT", "KILL", "TYPE", "replica")  # redis-py < 8 refuses "replica"
        wait_until(lambda: info(p)["connected_slaves"] == 0, 10, message="link dropped")
        for i in range(100):
            p.set(f"big:{i}", "x" * 1000)  # 100 KB: far past the backlog
    wait_synced(p, replica)
    assert stats(p) == (2, 0, 1)  # as Redis: a refused PSYNC counts as an error
    assert info(p)["repl_backlog_histlen"] <= 16 * 1024
    assert assert_same_data(p, replica) == 100


def test_wait_counts_acknowledging_replicas(primary, start_replica):
    p = client(primary)
    assert p.execute_command("WAIT", 0, 0) == 0
    started = time.monotonic()
    assert p.execute_command("WAIT", 1, 200) == 0  # no replica: the timeout answers
    assert time.monotonic() - started >= 0.19
    replica = client(start_replica(primary.port))
    wait_synced(p, replica)
    p.set("k", "v")
    started = time.monotonic()
    assert p.execute_command("WAIT", 1, 20000) == 1  # GETACK brings the ACK at once
    assert time.monotonic() - started < 5
    assert p.execute_command("WAIT", 2, 300) == 1
    for bad, text in ((("x", 0), "value is not an integer"), ((1, "x"), "timeout is not"),
                      ((1, -1), "timeout is negative")):
        try:
            p.execute_command("WAIT", *bad)
        except redis.ResponseError as exc:
            assert text in str(exc)
        else:
            raise AssertionError(f"WAIT {bad} succeeded")


def test_a_replica_that_stops_reading_is_cut_off(primary, start_replica):
    p = client(primary)
    p.config_set("client-output-buffer-limit", "replica 2mb 0 0")
    replica_proc = start_replica(primary.port)
    replica = client(replica_proc)
    wait_synced(p, replica)
    value = "v" * 100_000
    with frozen(replica_proc):
        for i in range(400):  # 40 MB: more than the socket buffers and the limit
            p.set(f"big:{i % 10}", value)
            if info(p)["connected_slaves"] == 0:
                break
        assert info(p)["connected_slaves"] == 0
        assert info(p, "stats")["client_output_buffer_limit_disconnections"] == 1
        assert p.ping()
    wait_synced(p, replica)  # it comes back with a full sync
    assert stats(p)[0] == 2
    assert assert_same_data(p, replica) == 10


def test_min_replicas_to_write_refuses_with_noreplicas(primary, start_replica):
    p = client(primary)
    p.config_set("min-replicas-to-write", 1)
    p.config_set("min-replicas-max-lag", 2)
    refused = "NOREPLICAS Not enough good replicas to write."

    def set_error():
        try:
            p.set("k", "v")
        except redis.ResponseError as exc:
            return str(exc)
        return None

    assert set_error() == refused
    assert p.get("k") is None and p.ping()
    assert info(p)["min_slaves_good_slaves"] == 0
    replica_proc = start_replica(primary.port)
    wait_until(lambda: set_error() is None, 20, message="writes accepted with a replica")
    assert info(p)["min_slaves_good_slaves"] == 1
    with frozen(replica_proc):  # no ACK for more than the lag: refused again
        wait_until(lambda: set_error() == refused, 20, message="writes refused")
    wait_until(lambda: set_error() is None, 20, message="writes accepted again")
    p.config_set("min-replicas-to-write", 0)
    assert "min_slaves_good_slaves" not in info(p)
