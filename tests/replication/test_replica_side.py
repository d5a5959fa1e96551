"""distcache as the replica of a real redis-server 7.0 primary, and of hostile fake ones.

Each test starts real processes on free ports; waits poll with deadlines.
"""
from __future__ import annotations

import contextlib
import random
import re

import pytest
import redis

from replica_helpers import (FakePrimary, assert_same, connect, dataset, diff, fill, link_up,
                             rdb_payload, resp, sync_stats, wait_in_sync, wait_link_up)
from servers import (REDIS_SENTINEL, REDIS_SERVER, SentinelProcess, as_map, distcache_server,
                     free_port, redis_server, wait_until)

pytestmark = pytest.mark.skipif(not REDIS_SERVER, reason="redis-server is not installed")

FAST_SYNC = ("--repl-diskless-sync-delay", "0")


_client, _stats, _assert_same = connect, sync_stats, assert_same


@pytest.mark.parametrize("diskless", ["yes", "no"])
def test_full_sync_then_stream_matches_the_primary(tmp_path, diskless):
    rng = random.Random(16)
    with redis_server(tmp_path / "primary", *FAST_SYNC, "--repl-diskless-sync", diskless) as p:
        primary = _client(p)
        fill(primary, rng, "a", 600)
        fill(primary, rng, "b", 200, db=2)
        with distcache_server(tmp_path / "replica", "--replicaof", "127.0.0.1", str(p.port)) as r:
            replica = _client(r)
            # Writes while the sync runs go to the primary's buffer, then the stream.
            fill(primary, rng, "during", 300)
            wait_link_up(replica)
            assert replica.execute_command("ROLE")[:4] == [b"slave", b"127.0.0.1", p.port,
                                                           b"connected"]
            # The stream: plain writes, MULTI, a script, and expiry's DELs.
            fill(primary, rng, "after", 120, db=1)
            with primary.pipeline(transaction=True) as tx:
                tx.incr("counter").lpush("a:1", b"tx").hset("a:2", "tx", "1").execute()
            primary.eval("redis.call('set', KEYS[1], ARGV[1]); redis.call('incrby', KEYS[2], 5)"
                         "; return 1", 2, "scripted", "counter", "v")
            primary.set("short", "x", px=30)
            primary.set("gone", "x")
            primary.delete("gone", "a:3")
            primary.execute_command("SELECT", 3)
            primary.execute_command("FLUSHDB")
            primary.execute_command("SELECT", 0)  # "short" lives in db 0
            # EXISTS expires the key on the primary, which streams its DEL; the replica
            # hides it from the moment its TTL passes, so both agree only after that.
            wait_until(lambda: primary.exists("short") == 0, message="the primary expired a key")
            _assert_same(primary, replica)
            info = replica.info("replication")
            assert info["role"] == "slave" and info["master_port"] == p.port
            assert info["master_replid"] == primary.info("replication")["master_replid"]
            assert info["slave_read_only"] == 1 and info["master_sync_in_progress"] == 0
            assert _stats(primary)[0] == 1
            # ACKs: WAIT is answered through REPLCONF GETACK, INFO's lag through ACKs.
            primary.set("acked", "1")
            assert primary.execute_command("WAIT", 1, 10000) == 1
            wait_until(lambda: primary.info("replication")["slave0"]["offset"]
                       == primary.info("replication")["master_repl_offset"],
                       message="the primary saw the replica's ACK")


def test_a_replica_hides_expired_keys_until_the_primary_deletes_them(tmp_path):
    with redis_server(tmp_path / "primary", *FAST_SYNC, "--enable-debug-command", "yes") as p:
        primary = _client(p)
        with distcache_server(tmp_path / "replica", "--replicaof", "127.0.0.1", str(p.port)) as r:
            replica = _client(r)
            wait_link_up(replica)
            primary.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
            primary.set("k", "v", px=100)
            wait_in_sync(primary, replica)
            wait_until(lambda: replica.get("k") is None, message="key hidden on the replica")
            # Still held (DBSIZE counts it, as Redis's replica does) until the DEL comes.
            assert replica.dbsize() == 1 and replica.exists("k") == 0
            assert primary.get("k") is None  # the primary expires it and sends DEL
            wait_in_sync(primary, replica)
            assert replica.dbsize() == 0


def test_a_writable_replica_expires_its_own_keys_only(tmp_path):
    """replica-read-only no: keys the replica's clients gave a TTL expire there (Redis's
    slaveKeysWithExpire); the primary's wait for its DEL. A redis-server replica of the
    same primary, doing the same, must end with the same DBSIZE."""
    with redis_server(tmp_path / "primary", *FAST_SYNC, "--enable-debug-command", "yes") as p, \
            distcache_server(tmp_path / "replica", "--replicaof", "127.0.0.1", str(p.port),
                             "--replica-read-only", "no") as r, \
            redis_server(tmp_path / "redis-replica", "--replicaof", "127.0.0.1", str(p.port),
                         "--replica-read-only", "no") as rr:
        primary = _client(p)
        replicas = [_client(r), _client(rr)]
        for replica in replicas:
            wait_link_up(replica)
        primary.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
        # 2 s: the replicas' APPEND must come while the key still lives (past its
        # TTL a writable replica's APPEND makes a new key of its own, as Redis's).
        primary.set("theirs", "v", px=2000)
        primary.set("theirs-expired-here", "v", px=60_000)
        primary.set("theirs-appended", "v", px=2000)
        for replica in replicas:
            wait_in_sync(primary, replica)
            replica.set("mine", "v", px=300)
            replica.set("plain", "v")
            with replica.pipeline(transaction=True) as tx:
                tx.select(1).set("in-multi", "v", px=300).select(0).execute()
            replica.eval("return redis.call('set', KEYS[1], 'v', 'px', 300)", 1, "in-script")
            replica.pexpire("theirs-expired-here", 300)  # a TTL set here: expired here
            replica.append("theirs-appended", "x")  # its TTL is the primary's
            replica.set("persisted", "v", px=300)
            replica.persist("persisted")
        for replica in replicas:
            # Deleted, not only hidden: DBSIZE counts a hidden key.
            wait_until(lambda: replica.dbsize() == 4, 10, message="the replica's keys expired")
            assert replica.execute_command("SELECT", 1) and replica.dbsize() == 0
            replica.execute_command("SELECT", 0)
            wait_until(lambda: sorted(replica.keys()) == [b"persisted", b"plain"], 10,
                       message="the primary's keys hidden past their TTL")
        assert primary.get("theirs") is None and primary.get("theirs-appended") is None
        for replica in replicas:
            wait_in_sync(primary, replica)
            assert replica.dbsize() == 2  # the primary's DELs came


def test_read_only_replica_and_stale_data(tmp_path):
    with redis_server(tmp_path / "primary", *FAST_SYNC) as p:
        primary = _client(p)
        primary.set("k", "v")
        with distcache_server(tmp_path / "replica", "--replicaof", "127.0.0.1", str(p.port),
                              "--replica-serve-stale-data", "no") as r:
            replica = _client(r)
            wait_link_up(replica)
            assert replica.get("k") == b"v"
            with pytest.raises(redis.ResponseError,
                               match="^You can't write against a read only replica.$"):
                replica.set("k", "x")
            with pytest.raises(redis.ResponseError):  # READONLY when queued, then EXECABORT
                with replica.pipeline(transaction=True) as tx:
                    tx.get("k").set("k", "x").execute()
            with pytest.raises(redis.ResponseError, match="read only replica"):
                replica.eval("return redis.call('set', 'k', 'x')", 0)
            assert replica.eval("return redis.call('get', 'k')", 0) == b"v"
            replica.config_set("replica-read-only", "no")
            assert replica.set("mine", "1")
            replica.config_set("slave-read-only", "yes")
            assert replica.config_get("replica-read-only") == {"replica-read-only": "yes"}
            p.stop()  # the link goes down: no stale data
            wait_until(lambda: not link_up(replica), message="link down")
            with pytest.raises(redis.ResponseError, match="^Link with MASTER is down and "
                               "replica-serve-stale-data is set to 'no'.$"):
                replica.get("k")
            with pytest.raises(redis.ResponseError, match="^Link with MASTER is down"):
                replica.ping()  # not a "stale" command, as in Redis
            assert replica.info("replication")["master_link_status"] == "down"
            assert replica.execute_command("ROLE")[0] == b"slave"
            replica.config_set("replica-serve-stale-data", "yes")
            assert replica.get("k") == b"v"


def test_replicaof_command_and_promotion(tmp_path):
    with redis_server(tmp_path / "primary", *FAST_SYNC) as p, \
            distcache_server(tmp_path / "replica") as r:
        primary, replica = _client(p), _client(r)
        primary.set("k", "v")
        replica.set("old", "1")
        before = replica.info("replication")["master_replid"]
        for bad in ("abc", "70000", "-1"):
            with pytest.raises(redis.ResponseError, match="^Invalid master port$"):
                replica.execute_command("REPLICAOF", "127.0.0.1", bad)
        assert replica.execute_command("SLAVEOF", "127.0.0.1", p.port) in (True, b"OK")
        assert replica.execute_command("REPLICAOF", "127.0.0.1", p.port) == \
            b"OK Already connected to specified master"
        assert replica.config_get("replicaof") == {"replicaof": f"127.0.0.1 {p.port}"}
        wait_link_up(replica)
        assert as_map(replica.execute_command("HELLO"))[b"role"] == b"replica"
        assert replica.keys("*") == [b"k"]  # a full sync replaced the old data
        replid = replica.info("replication")["master_replid"]
        assert replid != before
        assert replica.execute_command("REPLICAOF", "NO", "ONE") == b"OK"
        info = replica.info("replication")
        assert info["role"] == "master" and info["master_replid2"] == replid
        assert info["second_repl_offset"] == info["master_repl_offset"] + 1
        assert replica.execute_command("ROLE")[0] == b"master"
        assert as_map(replica.execute_command("HELLO"))[b"role"] == b"master"
        assert replica.set("k", "mine") and replica.get("k") == b"mine"
        assert replica.execute_command("REPLICAOF", "no", "one") == b"OK"


@contextlib.contextmanager
def _filled_primary(tmp_path, seed, *replica_flags, **replica_options):
    """A redis-server primary holding 300 keys of every type, and a distcache replica
    of it (not started); yields (rng, primary process, primary client, replica process)."""
    rng = random.Random(seed)
    with redis_server(tmp_path / "primary", *FAST_SYNC) as p:
        primary = _client(p)
        fill(primary, rng, "a", 300)
        yield rng, p, primary, distcache_server(
            tmp_path / "replica", "--replicaof", "127.0.0.1", str(p.port), *replica_flags,
            **replica_options)


def test_partial_resync_after_the_link_drops(tmp_path):
    with _filled_primary(tmp_path, 7) as (rng, p, primary, r):
        with r:
            replica = _client(r)
            wait_in_sync(primary, replica)
            full, partial = _stats(primary)
            assert primary.execute_command("CLIENT", "KILL", "TYPE", "replica") == 1
            fill(primary, rng, "meanwhile", 100)  # written while the link is down
            wait_until(lambda: _stats(primary)[1] == partial + 1, message="+CONTINUE")
            fill(primary, rng, "then", 50)
            _assert_same(primary, replica)
            assert _stats(primary) == (full, partial + 1)
            assert "accepted a partial resynchronization" in r.log()
            # The same from the replica's side: its primary's connection is a client.
            assert "flags=M" in replica.execute_command("CLIENT", "LIST").decode()
            assert replica.execute_command("CLIENT", "KILL", "TYPE", "master") == 1
            primary.set("after-kill", "1")
            wait_until(lambda: _stats(primary)[1] == partial + 2, message="+CONTINUE again")
            _assert_same(primary, replica)


def test_partial_resync_after_a_replica_restart(tmp_path):
    with _filled_primary(tmp_path, 9, "--save", "3600 1") as (rng, p, primary, r):
        with r:
            replica = _client(r)
            wait_in_sync(primary, replica)
            fill(primary, rng, "b", 50)
            with primary.pipeline(transaction=True) as tx:
                tx.incr("n").incr("n").execute()
            wait_in_sync(primary, replica)
            replica.save()
            fill(primary, rng, "c", 50)  # past the snapshot: the PSYNC must resend it
            wait_in_sync(primary, replica)
            r.kill()
            fill(primary, rng, "d", 50)
            primary.incr("n")
            full, partial = _stats(primary)
            r.start()
            _assert_same(primary, _client(r))
            assert _stats(primary) == (full, partial + 1)
            assert re.search(r"replication history from the snapshot: [0-9a-f]{40}:\d+", r.log())


def test_the_synced_data_and_the_stream_reach_the_replicas_own_log(tmp_path):
    with _filled_primary(tmp_path, 11, persistence=True) as (rng, p, primary, r):
        with r:
            replica = _client(r)
            wait_in_sync(primary, replica)
            fill(primary, rng, "b", 100, db=1)
            with primary.pipeline(transaction=True) as tx:
                tx.incr("n").rpush("a:1", "x").execute()
            expected = dataset(primary)
            wait_in_sync(primary, replica)
            # The log restarted from the synced data (a rewrite) and took the stream.
            wait_until(lambda: "Background AOF rewrite finished successfully" in r.log()
                       and replica.info("persistence")["aof_rewrite_in_progress"] == 0,
                       message="the log rewritten after the full sync")
            r.kill()
        alone = distcache_server(tmp_path / "replica", port=r.port, persistence=True)
        with alone:  # the same directory, no replicaof: the log alone gives the data
            differences = diff(expected, dataset(_client(alone)))
            assert not differences, "\n".join(differences)


def test_masterauth_and_announced_address(tmp_path):
    with redis_server(tmp_path / "primary", *FAST_SYNC, "--requirepass", "s3cret") as p:
        primary = redis.Redis(port=p.port, password="s3cret")
        primary.set("k", "v")
        with distcache_server(tmp_path / "replica", "--replicaof", "127.0.0.1", str(p.port),
                              "--masterauth", "s3cret", "--replica-announce-ip", "10.1.2.3",
                              "--replica-announce-port", "4567",
                              "--replica-priority", "7") as r:
            replica = _client(r)
            wait_link_up(replica)
            assert replica.get("k") == b"v"
            info = primary.info("replication")
            assert info["slave0"]["ip"] == "10.1.2.3" and info["slave0"]["port"] == 4567
            assert replica.info("replication")["slave_priority"] == 7


def test_chained_replica_of_a_redis_replica(tmp_path):
    """distcache replicates a redis-server that itself replicates (a chain)."""
    with redis_server(tmp_path / "top", *FAST_SYNC) as top, \
            redis_server(tmp_path / "mid", *FAST_SYNC, "--replicaof", "127.0.0.1",
                         str(top.port)) as mid:
        first, middle = _client(top), _client(mid)
        first.set("k", "v")
        with distcache_server(tmp_path / "replica", "--replicaof", "127.0.0.1",
                              str(mid.port)) as r:
            replica = _client(r)
            wait_link_up(replica)
            first.rpush("l", "a", "b")
            wait_in_sync(middle, replica)
            assert replica.lrange("l", 0, -1) == [b"a", b"b"] and replica.get("k") == b"v"


# -- hostile primaries ---------------------------------------------------------------------

@contextlib.contextmanager
def _following(tmp_path, script, connections):
    """A distcache replica of a FakePrimary running ``script``, once it connected
    ``connections`` times (so it retried); yields (fake, process, client)."""
    fake = FakePrimary(script)
    try:
        with distcache_server(tmp_path / "replica", "--replicaof", "127.0.0.1",
                              str(fake.port)) as r:
            wait_until(lambda: fake.connections >= connections, message="retries")
            yield fake, r, _client(r)
            assert r.proc.poll() is None
    finally:
        fake.close()


def test_a_corrupt_payload_keeps_the_old_data_and_is_retried(tmp_path):
    good = rdb_payload({b"a": b"1"})
    bad = rdb_payload({b"b": b"2"}, corrupt=True)

    def script(number, send):
        if number == 1:
            send(b"+FULLRESYNC %s 0\r\n$%d\r\n" % (b"1" * 40, len(good)) + good)
            return False  # then drop the link
        mark = b"m" * 40
        send(b"+FULLRESYNC %s 0\r\n\n\n$EOF:%s\r\n" % (b"2" * 40, mark) + bad + mark)
        return True

    with _following(tmp_path, script, 3) as (fake, r, replica):
        assert replica.get("a") == b"1" and replica.get("b") is None
        assert "wrong RDB checksum" in r.log()


def test_garbage_in_the_stream_drops_the_link_not_the_server(tmp_path):
    good = rdb_payload({b"a": b"1"})
    garbage = b"*2\r\n$3\r\nGET\r\n:oops\r\n" + b"\xff" * 64
    first = resp(b"SET", b"c", b"1")

    def script(number, send):
        if number == 1:
            send(b"+FULLRESYNC %s 0\r\n$%d\r\n" % (b"3" * 40, len(good)) + good + first + garbage)
        else:  # what came before the garbage was applied: the offset says so
            send(b"+CONTINUE\r\n" + resp(b"SET", b"c%d" % number, b"x") + garbage)
        return True

    with _following(tmp_path, script, 3) as (fake, r, replica):
        assert replica.get("a") == b"1" and replica.get("c") == b"1"
        assert replica.get("c2") == b"x"
        assert "protocol error in the replication stream" in r.log()
        psyncs = [c for c in fake.commands if c[0].upper() == b"PSYNC"]
        assert psyncs[0] == [b"PSYNC", b"?", b"-1"]
        assert psyncs[1] == [b"PSYNC", b"3" * 40, b"%d" % (len(first) + 1)]


def test_a_primary_that_never_answers_psync_is_dropped(tmp_path):
    def script(number, send):
        send(b"-ERR unknown command 'PSYNC'\r\n")
        return False

    with _following(tmp_path, script, 2) as (fake, r, replica):
        handshake = [c[:2] for c in fake.commands[:4]]
        assert handshake == [[b"PING"], [b"REPLCONF", b"listening-port"],
                             [b"REPLCONF", b"capa"], [b"PSYNC", b"?"]]
        assert replica.execute_command("ROLE")[3] in (b"connect", b"connecting", b"handshake")
        assert replica.ping()


def test_old_data_is_served_while_a_full_sync_is_in_progress(tmp_path):
    good = rdb_payload({b"a": b"1"})
    big = rdb_payload({b"k%d" % i: b"v" * 50 for i in range(2000)})

    def script(number, send):
        if number == 1:
            send(b"+FULLRESYNC %s 0\r\n$%d\r\n" % (b"4" * 40, len(good)) + good)
            return False
        send(b"+FULLRESYNC %s 0\r\n$%d\r\n" % (b"5" * 40, len(big)) + big[:len(big) // 2])
        return True  # and never the rest: the transfer stays in progress

    with _following(tmp_path, script, 2) as (fake, r, replica):
        # From +FULLRESYNC on the sync is in progress; the sizes come with the payload.
        info = wait_until(lambda: (lambda i: i if i["master_sync_in_progress"]
                                   and i["master_sync_read_bytes"] > 0 else None)(
            replica.info("replication")), message="a transfer in progress")
        assert info["master_sync_total_bytes"] == len(big)
        assert 0 < info["master_sync_read_bytes"] <= len(big) // 2
        assert replica.execute_command("ROLE")[3] == b"sync"
        assert replica.get("a") == b"1" and replica.dbsize() == 1


@pytest.mark.skipif(not REDIS_SENTINEL, reason="redis-sentinel is not installed")
def test_redis_sentinel_promotes_a_distcache_replica(tmp_path):
    """Sentinel reads the replica's INFO, and its failover (MULTI, SLAVEOF NO ONE,
    CONFIG REWRITE, CLIENT KILL, EXEC) promotes it when the primary dies."""
    conf = tmp_path / "replica.conf"
    conf.write_text("")
    with redis_server(tmp_path / "primary", *FAST_SYNC) as p, \
            distcache_server(tmp_path / "replica", "--replicaof", "127.0.0.1", str(p.port),
                             "--config", str(conf)) as r:
        replica = _client(r)
        wait_link_up(replica)
        sentinel_port = free_port()
        sentinel_conf = tmp_path / "sentinel.conf"
        sentinel_conf.write_text(f"port {sentinel_port}\nbind 127.0.0.1\n"
                                 f"sentinel monitor m 127.0.0.1 {p.port} 1\n"
                                 "sentinel down-after-milliseconds m 1000\n"
                                 "sentinel failover-timeout m 10000\n")
        with SentinelProcess(sentinel_conf, sentinel_port):
            sentinel = redis.Redis(port=sentinel_port, decode_responses=True)

            def replica_seen():
                found = map(as_map, sentinel.execute_command("SENTINEL", "REPLICAS", "m"))
                return any(x["port"] == str(r.port) and x["master-link-status"] == "ok"
                           and x["slave-priority"] == "100" for x in found)
            wait_until(replica_seen, 30, message="Sentinel sees the replica")
            p.kill()
            wait_until(lambda: sentinel.execute_command(
                "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "m") == ["127.0.0.1", str(r.port)],
                30, message="failover to the distcache replica")
            assert replica.info("replication")["role"] == "master"
            assert replica.set("k", "v")
            assert "replicaof" not in conf.read_text()  # CONFIG REWRITE after NO ONE


def test_the_offset_never_splits_a_transaction(tmp_path):
    good = rdb_payload({b"a": b"1"})
    before = resp(b"SET", b"b", b"1")
    tx = resp(b"MULTI") + resp(b"SET", b"x", b"1")

    def script(number, send):
        if number == 1:  # the link drops between MULTI and EXEC
            send(b"+FULLRESYNC %s 0\r\n$%d\r\n" % (b"6" * 40, len(good)) + good + before + tx)
            return False
        if number == 2:  # resent from the MULTI, which the replica asked for
            send(b"+CONTINUE\r\n" + tx + resp(b"EXEC"))
        return True

    with _following(tmp_path, script, 2) as (fake, r, replica):
        wait_until(lambda: replica.get("x") == b"1", message="the transaction, whole")
        psyncs = [c for c in fake.commands if c[0].upper() == b"PSYNC"]
        assert psyncs[1] == [b"PSYNC", b"6" * 40, b"%d" % (len(before) + 1)]
        assert replica.get("b") == b"1"
        assert replica.info("replication")["slave_repl_offset"] == \
            len(before) + len(tx) + len(resp(b"EXEC"))


def test_acl_rules_do_not_apply_to_the_primary(tmp_path):
    with redis_server(tmp_path / "primary", *FAST_SYNC) as p:
        primary = _client(p)
        conf = tmp_path / "replica.conf"
        conf.write_text("user admin on >pw ~* &* +@all\n"
                        "user default on nopass resetkeys ~mine* +@all\n")
        with distcache_server(tmp_path / "replica", "--config", str(conf), "--replicaof",
                              "127.0.0.1", str(p.port)) as r:
            admin = redis.Redis(port=r.port, username="admin", password="pw")
            wait_link_up(admin)
            primary.set("theirs", "1")
            primary.execute_command("SELECT", 1)
            primary.rpush("list", "a")
            wait_in_sync(primary, admin)
            assert admin.get("theirs") == b"1"
            with pytest.raises(redis.exceptions.NoPermissionError):
                _client(r).get("theirs")  # the default user's own rules still hold
