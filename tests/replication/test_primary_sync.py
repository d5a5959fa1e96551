"""A real redis-server replica of a distcache primary: full sync, then the stream."""
from __future__ import annotations

import threading

import pytest
import redis

from repl_helpers import assert_same_data, db_client, fill_every_type, info, wait_synced
from servers import wait_until


def client(proc) -> redis.Redis:
    return redis.Redis(port=proc.port, socket_timeout=30)


@pytest.mark.parametrize("diskless", ["yes", "no"])
def test_full_sync_of_every_type(primary, start_replica, diskless):
    p = client(primary)
    p.config_set("repl-diskless-sync", diskless)
    fill_every_type(p)
    replica = client(start_replica(primary.port))
    wait_synced(p, replica)
    assert assert_same_data(p, replica) > 500
    rinfo = info(p)
    assert rinfo["connected_slaves"] == 1
    assert rinfo["slave0"]["state"] == "online"
    assert rinfo["repl_backlog_active"] == 1
    assert info(p, "stats")["sync_full"] == 1
    # The replica's RDB carried our replication id and offset (aux fields): it reports them.
    assert info(replica)["master_replid"] == rinfo["master_replid"]


def test_stream_follows_every_write_path(primary, start_replica):
    p = client(primary)
    replica = client(start_replica(primary.port))
    wait_synced(p, replica)
    fill_every_type(p, "after-")
    # MULTI/EXEC, in another database than the last write
    db3 = db_client(p, 3)
    with db3.pipeline(transaction=True) as tx:
        tx.set("tx1", "a").incr("tx2").lpush("tx3", "x", "y").expire("tx1", 1000)
        tx.execute()
    # scripts: their effects, SPOP's and relative TTLs' deterministic forms
    p.eval("redis.call('set', KEYS[1], ARGV[1]); redis.call('sadd', KEYS[2], 'a', 'b', 'c');"
           "redis.call('spop', KEYS[2]); return 1", 2, "script-key", "script-set", "v")
    p.set("rel-ttl", "v", ex=500)
    p.getex("s1", px=90_000)
    p.spop("set5", 2)
    p.incrbyfloat("float", "1.5")
    p.execute_command("SWAPDB", 1, 2)
    db_client(p, 5).flushdb()
    # expiry: the primary's DEL reaches the replica
    p.set("short", "v", px=30)
    wait_until(lambda: info(p, "stats")["expired_keys"] >= 1 and not p.exists("short"),
               10, message="the key expired on the primary")
    wait_synced(p, replica)
    assert replica.exists("short") == 0
    assert assert_same_data(p, replica) > 100


def test_pipelined_writes_keep_their_order_and_database(primary, start_replica):
    """Runs of writes in one read take the dispatcher's shortcut into the stream (the
    stream as the only propagator); what breaks a run (a database change, MULTI, a
    PUBLISH inside EXEC, a rewritten write) must keep the order and the database."""
    p = client(primary)
    replica = client(start_replica(primary.port))
    wait_synced(p, replica)
    for round_ in range(3):
        with p.pipeline(transaction=False) as pipe:
            for i in range(20):
                pipe.set(f"run:{i}", f"{round_}:{i}")
            pipe.execute_command("SELECT", 2)
            pipe.set("db2", round_).incr("n").incr("n")
            pipe.execute_command("MULTI")
            pipe.set("tx", round_).execute_command("PUBLISH", "ch", "x")
            pipe.set("tx-after-publish", round_).set("ttl", "v", px=100_000)
            pipe.execute_command("EXEC")
            pipe.set("after-exec", round_).incr("n")
            pipe.execute_command("SELECT", 0)
            pipe.set("run:0", f"last:{round_}").incr("n0").incr("n0")
            pipe.execute()
    wait_synced(p, replica)
    assert assert_same_data(p, replica) == 27
    assert replica.get("run:0") == b"last:2" and db_client(replica, 2).get("n") == b"9"


def test_writes_during_the_sync_arrive(primary, start_replica):
    p = client(primary)
    p.config_set("repl-diskless-sync", "no")
    pipe = p.pipeline(transaction=False)
    for i in range(30000):
        pipe.set(f"bulk:{i}", f"value:{i}")
    pipe.execute()
    stop = threading.Event()
    written = []

    def writer() -> None:
        w = client(primary)
        i = 0
        while not stop.is_set():
            w.set(f"during:{i}", i)
            w.incr("counter")
            written.append(i)
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        replica = client(start_replica(primary.port))
        wait_until(lambda: info(replica).get("master_link_status") == "up", 30,
                   message="the sync ended")
        wait_until(lambda: len(written) > 50, 10, message="writes after the sync")
    finally:
        stop.set()
        thread.join()
    wait_synced(p, replica)
    assert int(replica.get("counter")) == len(written)
    assert assert_same_data(p, replica) >= 30000 + len(written)


def test_role_and_info_list_the_replica(primary, start_replica):
    p = client(primary)
    replica_proc = start_replica(primary.port)
    replica = client(replica_proc)
    wait_synced(p, replica)
    p.set("k", "v")
    wait_synced(p, replica)
    role = p.execute_command("ROLE")
    assert role[0] == b"master" and role[1] == info(p)["master_repl_offset"]
    wait_until(lambda: p.execute_command("ROLE")[2]
               and p.execute_command("ROLE")[2][0][2] == b"%d" % info(p)["master_repl_offset"],
               10, message="the replica's ACK")
    assert p.execute_command("ROLE")[2][0][:2] == [b"127.0.0.1", b"%d" % replica_proc.port]
    slave = info(p)["slave0"]
    assert slave["ip"] == "127.0.0.1" and slave["port"] == replica_proc.port
    assert slave["state"] == "online" and slave["lag"] <= 2
    lines = p.client_list(_type="replica")
    assert len(lines) == 1 and lines[0]["flags"] == "S"
    assert all(c["flags"] != "S" for c in p.client_list(_type="normal"))
    assert int(lines[0]["fd"]) > 2 and int(lines[0]["tot-mem"]) >= 16384
    # The replica's memory is in mem_clients_slaves, not in mem_clients_normal.
    memory = info(p, "memory")
    normal = sum(int(c["tot-mem"]) for c in p.client_list(_type="normal"))
    assert memory["mem_clients_slaves"] >= 16384
    assert 16384 <= memory["mem_clients_normal"] <= normal + 4096


def test_publish_reaches_the_replicas_subscribers(primary, start_replica):
    p = client(primary)
    replica = client(start_replica(primary.port))
    wait_synced(p, replica)
    sub = replica.pubsub()
    sub.subscribe("news")
    assert sub.get_message(timeout=5)["type"] == "subscribe"
    p.publish("news", "hello")
    message = sub.get_message(timeout=10)
    assert message and message["data"] == b"hello"
    sub.close()
