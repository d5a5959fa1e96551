"""Blocking pops: FIFO wake-up, timeouts, disconnects, MULTI, and chained moves."""
from __future__ import annotations

import time

import pytest

from types_resp import RawClient, encode

NIL_ARRAY = ("*", b"nil")


@pytest.fixture
def raw(shared_server):
    """Factory of raw clients on the shared server; the keyspace starts empty."""
    made = []

    def make(protocol=2):
        client = RawClient(shared_server.port, protocol)
        made.append(client)
        return client

    make().call("FLUSHALL")
    yield make
    for client in made:
        client.close()


def blocked_clients(client):
    info = client.call("INFO", "clients")[1].decode()
    return int(info.split("blocked_clients:")[1].split("\r\n")[0])


def wait_blocked(client, count, timeout=10.0):
    deadline = time.monotonic() + timeout
    while blocked_clients(client) != count:
        assert time.monotonic() < deadline, \
            f"blocked_clients is {blocked_clients(client)}, never {count}"
        time.sleep(0.005)


def park(admin, client, blocked, *args):
    """Send a blocking command and wait until the server counts ``blocked`` clients."""
    client.send(*args)
    wait_blocked(admin, blocked)


def test_waiters_are_served_in_fifo_order(raw):
    admin = raw()
    waiters = [raw() for _ in range(3)]
    for i, w in enumerate(waiters):
        w.send("BLPOP", "other", "q", "0")
        wait_blocked(admin, i + 1)
    assert admin.call("RPUSH", "q", "x", "y") == (":", b"2")  # reply is the length before serving
    assert waiters[0].read() == ("*", [("$", b"q"), ("$", b"x")])
    assert waiters[1].read() == ("*", [("$", b"q"), ("$", b"y")])
    assert admin.call("EXISTS", "q") == (":", b"0")
    wait_blocked(admin, 1)
    admin.call("LPUSH", "other", "z")
    assert waiters[2].read() == ("*", [("$", b"other"), ("$", b"z")])
    wait_blocked(admin, 0)


def test_timeout_returns_null_and_server_keeps_serving(raw):
    admin, waiter = raw(), raw()
    start = time.monotonic()
    park(admin, waiter, 1, "BRPOP", "q", "0.3")
    assert admin.call("PING") == ("+", b"PONG")  # the server is not blocked
    assert waiter.read() == NIL_ARRAY
    assert time.monotonic() - start >= 0.29
    wait_blocked(admin, 0)
    admin.call("RPUSH", "q", "a")
    assert admin.call("LLEN", "q") == (":", b"1")  # the timed-out client took nothing


def test_resp3_timeout_is_null(raw):
    waiter = raw(3)
    assert waiter.call("BLMPOP", "0.01", "1", "q", "LEFT") == ("_", b"")
    assert waiter.call("BZPOPMIN", "z", "0.01") == ("_", b"")


def test_disconnected_waiter_is_forgotten(raw):
    admin, first, second = raw(), raw(), raw()
    park(admin, first, 1, "BLPOP", "q", "0")
    park(admin, second, 2, "BLPOP", "q", "0")
    first.close()
    wait_blocked(admin, 1)
    admin.call("RPUSH", "q", "only")
    assert second.read() == ("*", [("$", b"q"), ("$", b"only")])
    assert admin.call("EXISTS", "q") == (":", b"0")


def test_blocking_commands_do_not_block_inside_multi(raw):
    client = raw()
    client.call("MULTI")
    for args in (("BLPOP", "q", "0"), ("BLMOVE", "q", "d", "LEFT", "LEFT", "0"),
                 ("BZPOPMIN", "z", "0")):
        client.call(*args)
    reply = client.call("EXEC")
    if reply[0] == "-":
        pytest.skip("MULTI/EXEC not available yet")
    assert reply == ("*", [NIL_ARRAY, ("$", b"nil"), NIL_ARRAY])


def test_blmove_wakes_and_feeds_a_second_waiter(raw):
    admin, mover, popper = raw(), raw(), raw()
    park(admin, mover, 1, "BLMOVE", "src", "dst", "RIGHT", "LEFT", "0")
    park(admin, popper, 2, "BRPOP", "dst", "0")
    admin.call("LPUSH", "src", "m")
    assert mover.read() == ("$", b"m")
    assert popper.read() == ("*", [("$", b"dst"), ("$", b"m")])
    assert admin.call("EXISTS", "src", "dst") == (":", b"0")


def test_bzpop_and_blmpop_are_woken(raw):
    admin, zmin, zmax, lm = raw(), raw(3), raw(), raw()
    park(admin, zmin, 1, "BZPOPMIN", "z", "0")
    park(admin, zmax, 2, "BZPOPMAX", "z", "0")
    park(admin, lm, 3, "BLMPOP", "0", "2", "l1", "l2", "RIGHT", "COUNT", "5")
    admin.call("ZADD", "z", "1", "a", "2", "b", "3", "c")
    assert zmin.read() == ("*", [("$", b"z"), ("$", b"a"), (",", b"1")])
    assert zmax.read() == ("*", [("$", b"z"), ("$", b"c"), ("$", b"3")])
    admin.call("RPUSH", "l2", "x", "y")
    assert lm.read() == ("*", [("$", b"l2"), ("*", [("$", b"y"), ("$", b"x")])])


def test_waiter_of_another_type_stays_blocked(raw):
    admin, zwaiter, lwaiter = raw(), raw(), raw()
    park(admin, zwaiter, 1, "BZPOPMIN", "k", "0")
    park(admin, lwaiter, 2, "BLPOP", "k", "0")
    admin.call("RPUSH", "k", "v")
    assert lwaiter.read() == ("*", [("$", b"k"), ("$", b"v")])
    wait_blocked(admin, 1)
    admin.call("ZADD", "k", "5", "m")
    assert zwaiter.read() == ("*", [("$", b"k"), ("$", b"m"), ("$", b"5")])


def test_timeout_argument_errors(raw):
    client = raw()
    assert client.call("BLPOP", "q", "-1") == ("-", b"ERR timeout is negative")
    assert client.call("BLPOP", "q", "x") == ("-", b"ERR timeout is not a float or out of range")
    client.call("SET", "s", "v")
    assert client.call("BLPOP", "q", "s", "0") == \
        ("-", b"WRONGTYPE Operation against a key holding the wrong kind of value")


def test_pipelined_commands_after_a_blocking_pop_wait_for_it(raw):
    admin, client = raw(), raw()
    client.send("BLPOP", "q", "0")
    client.send("PING")  # pipelined behind the blocked pop
    wait_blocked(admin, 1)
    admin.call("RPUSH", "q", "v")
    assert client.read() == ("*", [("$", b"q"), ("$", b"v")])
    assert client.read() == ("+", b"PONG")


def test_keys_filled_by_other_commands_wake_waiters(raw):
    admin, by_rename, by_copy = raw(), raw(), raw()
    park(admin, by_rename, 1, "BLPOP", "target", "0")
    park(admin, by_copy, 2, "BZPOPMIN", "zcopy", "0")
    admin.call("RPUSH", "tmp", "moved")
    admin.call("RENAME", "tmp", "target")
    assert by_rename.read() == ("*", [("$", b"target"), ("$", b"moved")])
    admin.call("ZADD", "zsrc", "1", "m")
    if admin.call("COPY", "zsrc", "zcopy")[0] == "-":
        pytest.skip("COPY not available")
    assert by_copy.read() == ("*", [("$", b"zcopy"), ("$", b"m"), ("$", b"1")])


def send_together(client, *commands):
    """Several commands in one write, so the server reads them in one go."""
    client.sock.sendall(b"".join(encode(list(c)) for c in commands))


def test_waiters_are_served_before_the_writers_next_command(raw):
    # Redis serves blocked clients right after the command that made the key
    # ready: a pipelined pop after the push finds nothing left.
    admin, waiter, writer = raw(), raw(), raw()
    park(admin, waiter, 1, "BLPOP", "k", "0")
    send_together(writer, ("RPUSH", "k", "x"), ("LPOP", "k"))
    assert writer.read() == (":", b"1")
    assert writer.read() == ("$", b"nil")
    assert waiter.read() == ("*", [("$", b"k"), ("$", b"x")])


def test_a_pipelined_delete_does_not_take_the_waiters_element(raw):
    admin, waiter, writer = raw(), raw(), raw()
    park(admin, waiter, 1, "BLMOVE", "k", "d", "LEFT", "LEFT", "0")
    send_together(writer, ("RPUSH", "k", "x"), ("DEL", "k"), ("LRANGE", "d", "0", "-1"))
    assert [writer.read() for _ in range(3)] == [(":", b"1"), (":", b"0"),
                                                 ("*", [("$", b"x")])]
    assert waiter.read() == ("$", b"x")


def test_a_transaction_serves_waiters_before_the_next_command(raw):
    admin, waiter, writer = raw(), raw(), raw()
    park(admin, waiter, 1, "BLPOP", "k", "0")
    send_together(writer, ("MULTI",), ("RPUSH", "k", "x"), ("EXEC",), ("LPOP", "k"))
    assert [writer.read() for _ in range(4)] == [("+", b"OK"), ("+", b"QUEUED"),
                                                 ("*", [(":", b"1")]), ("$", b"nil")]
    assert waiter.read() == ("*", [("$", b"k"), ("$", b"x")])


def test_a_served_clients_pipeline_waits_for_the_other_waiters(raw):
    # Redis runs an unblocked client's queued commands only after every ready
    # key has been served: B, blocked before A's second BLPOP ran, gets "2".
    admin, a, b = raw(), raw(), raw()
    send_together(a, ("BLPOP", "k", "0"), ("BLPOP", "k", "0"))
    wait_blocked(admin, 1)
    park(admin, b, 2, "BLPOP", "k", "0")
    admin.call("RPUSH", "k", "1", "2")
    assert a.read() == ("*", [("$", b"k"), ("$", b"1")])
    assert b.read() == ("*", [("$", b"k"), ("$", b"2")])
    wait_blocked(admin, 1)  # A's second BLPOP waits
    admin.call("RPUSH", "k", "3")
    assert a.read() == ("*", [("$", b"k"), ("$", b"3")])


@pytest.mark.parametrize("reason, expected", [
    ((), NIL_ARRAY), (("TIMEOUT",), NIL_ARRAY),
    (("ERROR",), ("-", b"UNBLOCKED client unblocked via CLIENT UNBLOCK"))])
def test_client_unblock(raw, reason, expected):
    admin, waiter = raw(), raw()
    waiter_id = waiter.call("CLIENT", "ID")[1]
    park(admin, waiter, 1, "BLMOVE", "k", "d", "LEFT", "LEFT", "0")
    assert admin.call("CLIENT", "UNBLOCK", waiter_id, *reason) == (":", b"1")
    assert waiter.read() == (expected if expected != NIL_ARRAY else ("*", b"nil"))
    wait_blocked(admin, 0)
    assert admin.call("RPUSH", "k", "x") == (":", b"1")  # nobody waits any more
    assert admin.call("LLEN", "k") == (":", b"1")
    assert waiter.call("PING") == ("+", b"PONG")
    assert admin.call("CLIENT", "UNBLOCK", waiter_id) == (":", b"0")  # not blocked


def test_client_unblock_errors(raw):
    admin = raw()
    assert admin.call("CLIENT", "UNBLOCK", "x") == \
        ("-", b"ERR value is not an integer or out of range")
    assert admin.call("CLIENT", "UNBLOCK", "99", "foo") == \
        ("-", b"ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
    assert admin.call("CLIENT", "UNBLOCK", "1", "2", "3") == \
        ("-", b"ERR unknown subcommand or wrong number of arguments for 'UNBLOCK'. "
              b"Try CLIENT HELP.")  # the name as typed
    assert admin.call("CLIENT", "UNBLOCK", "-1") == (":", b"0")
