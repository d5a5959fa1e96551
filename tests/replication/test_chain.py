"""Replication end to end: distcache replicas of distcache, chained replicas, a promotion
whose former siblings continue partially (PSYNC2), and a redis-server replica of a
distcache replica.

Real processes on free ports; every wait polls with a deadline.
"""
from __future__ import annotations

import contextlib
import random
import socket

import pytest
import redis

from replica_helpers import assert_same, connect, fill, sync_stats, wait_in_sync, wait_link_up
from servers import REDIS_SERVER, distcache_server, free_port, wait_until

FAST_SYNC = ("--repl-diskless-sync-delay", "0")


_client, _stats, _assert_same = connect, sync_stats, assert_same


@contextlib.contextmanager
def _primary_and_replica(tmp_path):
    """A distcache primary and a distcache replica of it (both sync at once)."""
    with distcache_server(tmp_path / "p", *FAST_SYNC) as p, \
            distcache_server(tmp_path / "r1", *FAST_SYNC, "--replicaof", "127.0.0.1",
                             str(p.port)) as r1:
        yield p, r1


def _writes_of_every_kind(primary, rng, prefix):
    """Every write path a stream carries: types, TTLs, MULTI, EVAL, expiry's DEL."""
    fill(primary, rng, prefix, 120, db=1)
    with primary.pipeline(transaction=True) as tx:
        tx.incr("counter").lpush(f"{prefix}:list", b"tx").hset(f"{prefix}:h", "tx", "1")
        tx.execute()
    primary.eval("redis.call('set', KEYS[1], ARGV[1]); redis.call('incrby', KEYS[2], 5)"
                 "; return 1", 2, f"{prefix}:scripted", "counter", "v")
    primary.set(f"{prefix}:short", "x", px=30)
    primary.set(f"{prefix}:gone", "x")
    primary.delete(f"{prefix}:gone")
    wait_until(lambda: primary.exists(f"{prefix}:short") == 0,
               message="the primary expired a key")


def test_a_distcache_replica_follows_a_distcache_primary(tmp_path):
    rng = random.Random(7)
    with distcache_server(tmp_path / "p", *FAST_SYNC) as p:
        primary = _client(p)
        fill(primary, rng, "a", 600)
        fill(primary, rng, "b", 200, db=2)
        with distcache_server(tmp_path / "r", "--replicaof", "127.0.0.1", str(p.port)) as r:
            replica = _client(r)
            fill(primary, rng, "during", 300)  # while the sync runs
            wait_link_up(replica)
            _writes_of_every_kind(primary, rng, "after")
            primary.execute_command("SELECT", 3)
            primary.execute_command("FLUSHDB")
            _assert_same(primary, replica)
            assert _stats(primary) == (1, 0)
            info = replica.info("replication")
            assert info["master_replid"] == primary.info("replication")["master_replid"]
            primary.set("acked", "1")
            assert primary.execute_command("WAIT", 1, 10000) == 1


def test_chained_replicas_share_the_primary_history(tmp_path):
    """P -> R1 -> R2: R1 passes P's stream on byte for byte (offsets equal, nothing
    propagated twice), a sub-replica joining while the stream is in database 2
    learns it from the RDB (repl-stream-db), and R1's own partial resync leaves R2
    connected."""
    rng = random.Random(8)
    with _primary_and_replica(tmp_path) as (p, r1):
        primary, mid = _client(p), _client(r1)
        fill(primary, rng, "a", 300)
        wait_link_up(mid)
        in_db2 = redis.Redis(port=p.port, db=2, socket_timeout=20)
        in_db2.set("db2:first", "1")  # the stream is now in database 2
        wait_in_sync(primary, mid)
        with distcache_server(tmp_path / "r2", "--replicaof", "127.0.0.1",
                              str(r1.port)) as r2:
            leaf = _client(r2)
            wait_link_up(leaf)
            in_db2.set("db2:second", "2")  # no SELECT before it in the stream
            _writes_of_every_kind(primary, rng, "after")
            mid.publish("__sentinel__:hello", "x")  # local on a replica (Sentinel does it)
            _assert_same(primary, leaf)
            _assert_same(primary, mid)
            assert leaf.execute_command("SELECT", 2) and leaf.get("db2:second") == b"2"
            want = primary.info("replication")
            for server in (mid, leaf):
                info = server.info("replication")
                assert info["master_replid"] == want["master_replid"]
                assert info["master_repl_offset"] == want["master_repl_offset"]
                assert info["repl_backlog_active"] == 1
            assert _stats(mid) == (1, 0)
            # R1's link drops: it continues from P; R2 keeps its link to R1.
            mid.execute_command("CLIENT", "KILL", "TYPE", "master")
            fill(primary, rng, "meanwhile", 60)
            _assert_same(primary, leaf)
            assert _stats(primary) == (1, 1)
            assert _stats(mid) == (1, 0)


def test_a_promoted_replica_lets_its_siblings_and_old_primary_continue(tmp_path):
    """REPLICAOF NO ONE shifts the replid: the sibling repointed to it, and the old
    primary turned into its replica, both get +CONTINUE through replid2."""
    rng = random.Random(9)
    with distcache_server(tmp_path / "p", *FAST_SYNC) as p, \
            distcache_server(tmp_path / "r1", *FAST_SYNC, "--replicaof", "127.0.0.1",
                             str(p.port)) as r1, \
            distcache_server(tmp_path / "r2", "--replicaof", "127.0.0.1", str(p.port)) as r2:
        primary, new, sibling = _client(p), _client(r1), _client(r2)
        fill(primary, rng, "a", 300)
        wait_in_sync(primary, new)
        wait_in_sync(primary, sibling)
        old_replid = primary.info("replication")["master_replid"]
        assert new.execute_command("REPLICAOF", "NO", "ONE") == b"OK"
        info = new.info("replication")
        assert info["role"] == "master" and info["master_replid2"] == old_replid
        assert sibling.execute_command("REPLICAOF", "127.0.0.1", r1.port) == b"OK"
        primary.execute_command("REPLICAOF", "127.0.0.1", r1.port)
        for server in (sibling, primary):
            wait_link_up(server)
        new.set("after-promotion", "1")
        _writes_of_every_kind(new, rng, "new")
        _assert_same(new, sibling)
        _assert_same(new, primary)
        assert _stats(new) == (0, 2)
        assert sibling.info("replication")["master_replid"] == info["master_replid"]
        with pytest.raises(redis.ReadOnlyError):
            primary.set("x", "1")


@pytest.mark.skipif(not REDIS_SERVER, reason="redis-server is not installed")
def test_a_redis_server_replica_of_a_distcache_replica(tmp_path, start_replica):
    rng = random.Random(10)
    with _primary_and_replica(tmp_path) as (p, r1):
        primary, mid = _client(p), _client(r1)
        fill(primary, rng, "a", 300)
        fill(primary, rng, "b", 100, db=5)
        wait_in_sync(primary, mid)
        leaf = _client(start_replica(r1.port, "--repl-diskless-load", "disabled"))
        wait_link_up(leaf)
        redis.Redis(port=p.port, db=5, socket_timeout=20).set("db5:after", "1")
        _writes_of_every_kind(primary, rng, "after")
        _assert_same(primary, leaf, databases=6)
        assert leaf.info("replication")["master_replid"] == \
            primary.info("replication")["master_replid"]


def test_min_replicas_to_write_binds_only_while_a_primary(tmp_path):
    with _primary_and_replica(tmp_path) as (p, r1):
        primary, node = _client(p), _client(r1)
        wait_link_up(node)
        node.config_set("min-replicas-to-write", 1)
        primary.set("a", "1")
        wait_until(lambda: node.get("a") == b"1", message="a replica applies the stream")
        node.execute_command("REPLICAOF", "NO", "ONE")
        with pytest.raises(redis.ResponseError, match="^NOREPLICAS Not enough good replicas"):
            node.set("b", "1")  # at once: a primary without a good replica
        node.execute_command("REPLICAOF", "127.0.0.1", p.port)
        primary.set("c", "1")
        wait_until(lambda: node.get("c") == b"1", message="a replica again: the stream applies")


def test_no_sync_from_a_replica_whose_link_is_down(tmp_path):
    """As Redis (checked against redis-server 7.0.15): a sub-replica must wait."""
    with distcache_server(tmp_path / "r", "--replicaof", "127.0.0.1", str(free_port())) as r:
        for request in (b"PSYNC ? -1\r\n", b"SYNC\r\n"):
            with socket.create_connection(("127.0.0.1", r.port), timeout=10) as sock:
                sock.sendall(request)
                assert sock.recv(200) == \
                    b"-NOMASTERLINK Can't SYNC while not connected with my master\r\n"


def test_a_full_sync_of_a_replica_is_passed_to_its_sub_replicas(tmp_path):
    """P restarts empty with a new history: R1's full sync drops R2, which syncs again
    from R1 and ends with P's new data, not a mix."""
    rng = random.Random(11)
    with _primary_and_replica(tmp_path) as (p, r1), \
            distcache_server(tmp_path / "r2", "--replicaof", "127.0.0.1", str(r1.port)) as r2:
        primary, mid, leaf = _client(p), _client(r1), _client(r2)
        fill(primary, rng, "old", 200)
        _assert_same(primary, leaf)
        p.stop()
        p.start()
        primary.set("new", "1")
        wait_until(lambda: mid.info("replication")["master_replid"]
                   == primary.info("replication")["master_replid"], 20,
                   message="R1 synced the new history")
        fill(primary, rng, "new", 50)
        _assert_same(primary, leaf)
        assert leaf.get("old:0") is None
        assert _stats(mid) == (2, 0)
