"""MULTI / EXEC / DISCARD / WATCH / UNWATCH against a real server over TCP."""
from __future__ import annotations

import socket
import time

import pytest
import redis

from distcache.server.app import CacheServer
from servers import distcache_server


@pytest.fixture
def conn(shared_server):
    """One connection (MULTI state is per connection), every db flushed."""
    client = redis.Redis(port=shared_server.port, single_connection_client=True,
                         socket_timeout=10)
    client.flushall()
    yield client
    client.close()


def cmd(client: redis.Redis, *args):
    """Send one command on a single-connection client; the raw reply (no callbacks)."""
    connection = client.connection
    connection.send_command(*args)
    return connection.read_response()


def other(server) -> redis.Redis:
    return redis.Redis(port=server.port, socket_timeout=10)


def test_multi_exec_runs_queued_commands(conn):
    assert cmd(conn, "MULTI") == b"OK"
    assert cmd(conn, "SET", "a", "1") == b"QUEUED"
    assert cmd(conn, "INCR", "a") == b"QUEUED"
    assert cmd(conn, "GET", "a") == b"QUEUED"
    assert cmd(conn, "EXEC") == [b"OK", 2, b"2"]
    assert conn.get("a") == b"2"


def test_empty_transaction_and_pipeline(conn):
    cmd(conn, "MULTI")
    assert cmd(conn, "EXEC") == []
    pipe = conn.pipeline(transaction=True)
    pipe.set("x", "1").incrby("x", 5).lpush("l", "a", "b").llen("l")
    assert pipe.execute() == [True, 6, 2, 2]


def test_errors_outside_and_inside_multi(conn):
    with pytest.raises(redis.ResponseError, match="^EXEC without MULTI$"):
        cmd(conn, "EXEC")
    with pytest.raises(redis.ResponseError, match="^DISCARD without MULTI$"):
        cmd(conn, "DISCARD")
    cmd(conn, "MULTI")
    with pytest.raises(redis.ResponseError, match="^MULTI calls can not be nested$"):
        cmd(conn, "MULTI")
    with pytest.raises(redis.ResponseError, match="^WATCH inside MULTI is not allowed$"):
        cmd(conn, "WATCH", "k")
    # neither error aborts the transaction
    assert cmd(conn, "SET", "k", "v") == b"QUEUED"
    assert cmd(conn, "EXEC") == [b"OK"]


@pytest.mark.parametrize("bad", [["GET"], ["NOSUCHCOMMAND", "x"], ["WATCH"]])
def test_queueing_error_aborts_exec(conn, bad):
    cmd(conn, "MULTI")
    cmd(conn, "SET", "a", "1")
    with pytest.raises(redis.ResponseError):
        cmd(conn, *bad)
    with pytest.raises(redis.ResponseError) as info:
        cmd(conn, "EXEC")
    assert str(info.value) == "Transaction discarded because of previous errors."
    assert info.value.args[0].startswith("Transaction discarded")
    assert conn.get("a") is None
    with pytest.raises(redis.ResponseError, match="EXEC without MULTI"):
        cmd(conn, "EXEC")  # the transaction is gone


def test_exec_with_arguments_discards(conn):
    cmd(conn, "MULTI")
    with pytest.raises(redis.ResponseError) as info:
        cmd(conn, "EXEC", "now")
    assert str(info.value) == ("Transaction discarded because of: wrong number of arguments "
                               "for 'exec' command")
    with pytest.raises(redis.ResponseError, match="EXEC without MULTI"):
        cmd(conn, "EXEC")


def test_runtime_errors_are_per_command(conn):
    pipe = conn.pipeline(transaction=True)
    pipe.set("s", "text").incr("s").set("t", "1")
    results = pipe.execute(raise_on_error=False)
    assert results[0] is True and results[2] is True
    assert isinstance(results[1], redis.ResponseError)
    assert str(results[1]) == "value is not an integer or out of range"
    assert conn.get("t") == b"1"


def test_discard_drops_queue_and_watches(conn, shared_server):
    conn.set("w", "1")
    cmd(conn, "WATCH", "w")
    cmd(conn, "MULTI")
    cmd(conn, "SET", "a", "1")
    assert cmd(conn, "DISCARD") == b"OK"
    assert conn.get("a") is None
    other(shared_server).set("w", "2")  # no longer watched: next EXEC runs
    cmd(conn, "MULTI")
    cmd(conn, "SET", "a", "1")
    assert cmd(conn, "EXEC") == [b"OK"]


def test_unwatch_is_queued_inside_multi(conn):
    cmd(conn, "MULTI")
    assert cmd(conn, "UNWATCH") == b"QUEUED"
    assert cmd(conn, "EXEC") == [b"OK"]


def test_watch_invalidated_by_other_client(conn, shared_server):
    conn.set("balance", "10")
    pipe = conn.pipeline(transaction=True)
    pipe.watch("balance")
    assert pipe.get("balance") == b"10"
    other(shared_server).incr("balance")
    pipe.multi()
    pipe.set("balance", "0")
    with pytest.raises(redis.WatchError):
        pipe.execute()
    assert conn.get("balance") == b"11"


def test_watch_untouched_key_succeeds_and_own_write_before_multi_counts(conn):
    conn.set("k", "1")
    cmd(conn, "WATCH", "k", "missing")
    cmd(conn, "MULTI")
    cmd(conn, "INCR", "k")
    assert cmd(conn, "EXEC") == [2]
    cmd(conn, "WATCH", "k")
    conn.set("k", "5")  # our own change also counts, as in Redis
    cmd(conn, "MULTI")
    cmd(conn, "INCR", "k")
    assert cmd(conn, "EXEC") is None
    assert conn.get("k") == b"5"


@pytest.mark.parametrize("change", [
    lambda r: r.delete("k"), lambda r: r.expire("k", 100), lambda r: r.append("k", "x"),
    lambda r: r.flushall(), lambda r: r.set("k", "1"),
])
def test_watch_sees_every_kind_of_change(conn, shared_server, change):
    conn.set("k", "1")
    cmd(conn, "WATCH", "k")
    change(other(shared_server))
    cmd(conn, "MULTI")
    cmd(conn, "PING")
    assert cmd(conn, "EXEC") is None


def _exec_after_watch(conn, key, change) -> object:
    cmd(conn, "WATCH", key)
    change()
    cmd(conn, "MULTI")
    cmd(conn, "PING")
    return cmd(conn, "EXEC")


@pytest.mark.parametrize("where", ["db0", "db1", "both"])
def test_swapdb_invalidates_a_watched_key_on_either_side(conn, shared_server, where):
    # Redis's touchAllWatchedKeysInDb: the key exists before or after the swap.
    writer = other(shared_server)
    if where in ("db0", "both"):
        conn.set("k", "0")
    if where in ("db1", "both"):
        redis.Redis(port=shared_server.port, db=1).set("k", "1")
    assert _exec_after_watch(conn, "k", lambda: writer.swapdb(0, 1)) is None


def test_swapdb_and_flushdb_leave_a_watched_missing_key_alone(conn, shared_server):
    writer = other(shared_server)
    writer.set("unrelated", "v")
    assert _exec_after_watch(conn, "k", lambda: writer.swapdb(0, 1)) == [b"PONG"]
    assert _exec_after_watch(conn, "k", writer.flushdb) == [b"PONG"]
    assert _exec_after_watch(conn, "k", writer.flushall) == [b"PONG"]


def test_rename_to_itself_is_not_a_change(conn, shared_server):
    conn.set("k", "v")
    writer = other(shared_server)
    assert _exec_after_watch(conn, "k", lambda: writer.rename("k", "k")) == [b"PONG"]


def test_rejected_exec_is_execabort_and_drops_the_watches(conn, shared_server):
    cmd(conn, "WATCH", "k")
    # redis-py maps the EXECABORT prefix to ExecAbortError and strips it
    with pytest.raises(redis.exceptions.ExecAbortError, match="^Transaction discarded because "
                       "of: wrong number of arguments for 'exec' command$"):
        cmd(conn, "EXEC", "extra")
    other(shared_server).set("k", "changed")  # no longer watched: EXEC below runs
    cmd(conn, "MULTI")
    cmd(conn, "PING")
    assert cmd(conn, "EXEC") == [b"PONG"]


def test_exec_in_resp2_subscriber_mode_is_execabort(shared_server):
    sock = socket.create_connection(("127.0.0.1", shared_server.port), timeout=10)
    with sock:
        sock.sendall(b"SUBSCRIBE ch\r\nEXEC\r\n")
        expected = (b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n-EXECABORT Transaction "
                    b"discarded because of: Can't execute 'exec': only (P|S)SUBSCRIBE / "
                    b"(P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n")
        got = b""
        while len(got) < len(expected):
            chunk = sock.recv(4096)
            assert chunk, got
            got += chunk
        assert got == expected


def test_watch_missing_key_then_created(conn, shared_server):
    cmd(conn, "WATCH", "new")
    other(shared_server).set("new", "v")
    cmd(conn, "MULTI")
    cmd(conn, "GET", "new")
    assert cmd(conn, "EXEC") is None


def test_watched_key_expiring_fails_exec(conn):
    conn.set("ttl", "v", px=80)
    deadline_ms = time.time() * 1000 + 80
    cmd(conn, "WATCH", "ttl")
    # poll the clock (not the key: touching it would expire it through another path)
    limit = time.monotonic() + 5
    while time.time() * 1000 < deadline_ms + 20 and time.monotonic() < limit:
        time.sleep(0.005)
    cmd(conn, "MULTI")
    cmd(conn, "PING")
    assert cmd(conn, "EXEC") is None


def test_watched_key_expired_and_read_fails_exec(conn, shared_server):
    conn.set("ttl", "v", px=30)
    cmd(conn, "WATCH", "ttl")
    reader = other(shared_server)
    limit = time.monotonic() + 5
    while reader.get("ttl") is not None:  # lazy expiry through a read
        assert time.monotonic() < limit
        time.sleep(0.005)
    cmd(conn, "MULTI")
    cmd(conn, "PING")
    assert cmd(conn, "EXEC") is None


def test_watch_of_already_expired_key_is_not_a_change(conn):
    conn.set("gone", "v", px=1)
    limit = time.monotonic() + 5
    while conn.pttl("gone") != -2:
        assert time.monotonic() < limit
    cmd(conn, "WATCH", "gone")
    cmd(conn, "MULTI")
    cmd(conn, "PING")
    assert cmd(conn, "EXEC") == [b"PONG"]


def test_reset_drops_multi_and_watch(conn, shared_server):
    conn.set("k", "1")
    cmd(conn, "WATCH", "k")
    cmd(conn, "MULTI")
    cmd(conn, "SET", "k", "2")
    assert cmd(conn, "RESET") == b"RESET"
    other(shared_server).set("k", "3")
    cmd(conn, "MULTI")
    cmd(conn, "GET", "k")
    assert cmd(conn, "EXEC") == [b"3"]


def test_disconnect_forgets_watches(shared_server):
    before = _watched_count(shared_server)
    for _ in range(5):
        c = redis.Redis(port=shared_server.port, single_connection_client=True)
        cmd(c, "WATCH", "a", "b", "c")
        c.close()
    r = other(shared_server)
    limit = time.monotonic() + 5
    while _watched_count(shared_server) > before:
        assert time.monotonic() < limit
        time.sleep(0.01)
    r.set("a", "1")  # no stale client is touched (would raise server-side)
    assert r.ping()


def _watched_count(server) -> int:
    r = other(server)
    return sum(1 for line in r.client_list() if line.get("cmd") == "watch")


def test_select_inside_transaction(conn):
    cmd(conn, "MULTI")
    cmd(conn, "SELECT", "1")
    cmd(conn, "SET", "db1key", "v")
    assert cmd(conn, "EXEC") == [b"OK", b"OK"]
    assert conn.get("db1key") == b"v"  # still on db 1
    cmd(conn, "SELECT", "0")
    assert conn.get("db1key") is None


def test_exec_resp3(shared_server):
    c = redis.Redis(port=shared_server.port, protocol=3, single_connection_client=True)
    c.flushall()
    cmd(c, "MULTI")
    cmd(c, "HSET", "h", "f", "v")
    cmd(c, "HGETALL", "h")
    cmd(c, "GET", "missing")
    assert cmd(c, "EXEC") == [1, {b"f": b"v"}, None]
    c.close()


def test_transaction_is_propagated_wrapped_in_multi_exec():
    """The log sees MULTI ... EXEC around a transaction's writes (and nothing for reads)."""
    server = CacheServer("127.0.0.1", 0, appendonly="no", save="")
    seen = []
    server.keyspace.propagators.append(
        lambda db, cmds: seen.extend((db, cmd[0].upper()) for cmd in cmds))
    with server:
        r = redis.Redis(port=server.port, single_connection_client=True)
        pipe = r.pipeline(transaction=True)
        pipe.set("a", "1").get("a").incr("a")
        assert pipe.execute() == [True, b"1", 2]
        names = [cmd[1] for cmd in seen]
        assert names[:2] == [b"MULTI", b"SET"] and names[-1] == b"EXEC"
        assert len(names) == 4 and names[2].startswith(b"INCR")  # INCR or its rewrite
        seen.clear()
        pipe = r.pipeline(transaction=True)
        pipe.get("a").exists("a")
        pipe.execute()
        assert seen == []  # read-only transaction: nothing propagated
        r.close()


def test_many_watchers_all_invalidated(tmp_path):
    with distcache_server(tmp_path) as srv:
        clients = [redis.Redis(port=srv.port, single_connection_client=True)
                   for _ in range(5)]
        for c in clients:
            cmd(c, "WATCH", "shared")
        redis.Redis(port=srv.port).set("shared", "x")
        for c in clients:
            cmd(c, "MULTI")
            cmd(c, "PING")
            assert cmd(c, "EXEC") is None
            c.close()
