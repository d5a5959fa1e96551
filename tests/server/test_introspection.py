"""MONITOR, SLOWLOG, LATENCY, LOLWUT and CLIENT PAUSE/REPLY/NO-EVICT, against redis-server."""
from __future__ import annotations

import re
import select
import socket
import time
from typing import List

import pytest
import redis

from servers import same_reply, wait_until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def pair(shared_server, reference_redis):
    clients = [redis.Redis(port=p.port, socket_timeout=10)
               for p in (shared_server, reference_redis)]
    yield clients
    for client in clients:
        client.close()


@pytest.fixture
def fresh(pair):
    for client in pair:
        client.execute_command("CLIENT", "UNPAUSE")
        client.config_set("slowlog-log-slower-than", 10000)
        client.config_set("slowlog-max-len", 128)
        client.config_set("latency-monitor-threshold", 0)
        client.execute_command("SLOWLOG", "RESET")
        client.execute_command("LATENCY", "RESET")
        client.flushall()
    return pair


class Raw:
    """A raw RESP connection: send commands, read exactly what comes back."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def send(self, *commands: List[str]) -> None:
        data = b""
        for args in commands:
            data += b"*%d\r\n" % len(args)
            for arg in args:
                arg = arg.encode() if isinstance(arg, str) else arg
                data += b"$%d\r\n%s\r\n" % (len(arg), arg)
        self.sock.sendall(data)

    def read_until(self, predicate, timeout: float = 10.0) -> bytes:
        deadline = time.monotonic() + timeout
        while not predicate(self.buf):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no reply in time; have {self.buf!r}")
            ready, _, _ = select.select([self.sock], [], [], left)
            if ready:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.buf += chunk
        return self.buf

    def nothing_for(self, seconds: float) -> bool:
        """True when no byte arrives within ``seconds`` (a negative check, bounded)."""
        ready, _, _ = select.select([self.sock], [], [], seconds)
        return not ready

    def close(self) -> None:
        self.sock.close()


# -- replies and errors, compared with redis-server --------------------------------------

@pytest.mark.parametrize("command", [
    ("SLOWLOG", "HELP"), ("SLOWLOG", "GET", "x"), ("SLOWLOG", "GET", "-2"),
    ("SLOWLOG", "GET", "1", "2"), ("SLOWLOG", "LEN", "1"), ("SLOWLOG", "FOO"), ("SLOWLOG",),
    ("SLOWLOG", "RESET"), ("SLOWLOG", "LEN"),
    ("LATENCY", "HELP"), ("LATENCY", "FOO"), ("LATENCY", "LATEST"), ("LATENCY", "HISTORY"),
    ("LATENCY", "HISTORY", "command"), ("LATENCY", "RESET"), ("LATENCY", "RESET", "a", "b"),
    ("LATENCY", "GRAPH", "command"), ("LATENCY", "DOCTOR"),
    ("LOLWUT",), ("LOLWUT", "VERSION", "x"), ("LOLWUT", "VERSION", "1"), ("LOLWUT", "foo"),
    ("LOLWUT", "VERSION", "-1"), ("LOLWUT", "VERSION", "5", "x"),
    ("CLIENT", "PAUSE"), ("CLIENT", "PAUSE", "x"), ("CLIENT", "PAUSE", "-1"),
    ("CLIENT", "PAUSE", "10", "foo"), ("CLIENT", "PAUSE", "10", "write", "x"),
    ("CLIENT", "UNPAUSE", "x"), ("CLIENT", "UNPAUSE"),
    ("CLIENT", "REPLY"), ("CLIENT", "REPLY", "foo"), ("CLIENT", "REPLY", "ON"),
    ("CLIENT", "NO-EVICT", "foo"), ("CLIENT", "NO-EVICT", "on"), ("CLIENT", "NO-EVICT", "OFF"),
    ("MONITOR", "x"),
    ("CONFIG", "SET", "slowlog-log-slower-than", "-2"),
    ("CONFIG", "SET", "slowlog-log-slower-than", "abc"),
    ("CONFIG", "SET", "slowlog-max-len", "-1"),
    ("CONFIG", "SET", "latency-monitor-threshold", "-1"),
    ("CONFIG", "GET", "slowlog-*"), ("CONFIG", "GET", "latency-monitor-threshold"),
])
def test_replies_and_errors_match_redis(fresh, command):
    same_reply(fresh, *command)


def test_lolwut_art_ends_with_the_version_line(fresh):
    for version, tail in (("5", b"Georg Nees - schotter, plotter on paper, 1968. "
                                b"Redis ver. 7.0.15\n"),
                          ("6", b"Original 8 bit image from Plaguemon by hikikomori. "
                                b"Redis ver. 7.0.15\n")):
        for client in fresh:
            art = client.execute_command("LOLWUT", "VERSION", version)
            assert art.endswith(tail) and len(art) > len(tail) + 10


# -- MONITOR ------------------------------------------------------------------------------

_LINE = re.compile(rb"^\+(\d+)\.(\d{6}) \[(\d+) ([^\]]+)\] (.*)$")


def _monitor_lines(port: int, run) -> List[bytes]:
    """Start MONITOR on ``port``, call ``run()``, return the lines seen, normalized."""
    mon = Raw(port)
    mon.send(["MONITOR"])
    mon.read_until(lambda b: b.startswith(b"+OK\r\n"))
    mon.buf = mon.buf[5:]
    run()
    mon.read_until(lambda b: b'"ECHO" "end"' in b)
    mon.close()
    lines = []
    for line in mon.buf.split(b"\r\n"):
        if not line:
            continue
        match = _LINE.match(line)
        assert match, line
        origin = b"lua" if match.group(4) == b"lua" else b"client"
        lines.append(b"[%s %s] %s" % (match.group(3), origin, match.group(5)))
    return lines


def test_monitor_shows_other_clients_commands_as_redis(fresh):
    commands = [["SET", "k", "v"], ["get", "k"], ["GET", "k"], ["GET", "k"],  # a run of GETs
                ["SET", "r", "1"], ["SET", "r", "2"], ["SET", 'a "b"', "c\x01\n\\"],
                ["LPUSH", "k", "x"],  # failed: still shown
                ["AUTH", "secret"], ["HELLO", "2", "AUTH", "default", "anything"],
                ["CONFIG", "GET", "maxmemory"],  # admin: never shown
                ["GET"],  # wrong arity: never shown
                ["EVAL", "redis.call('set', KEYS[1], 'x'); return redis.call('get', KEYS[1])",
                 "1", "s"],
                ["MULTI"], ["SELECT", "3"], ["SET", "y", "1"], ["EXEC"], ["SELECT", "0"],
                ["ECHO", "end"]]

    def run_on(port):
        def run():
            raw = Raw(port)
            raw.send(*commands)
            raw.read_until(lambda b: b.endswith(b"$3\r\nend\r\n"))
            raw.close()
        return run

    seen = [_monitor_lines(client.connection_pool.connection_kwargs["port"],
                           run_on(client.connection_pool.connection_kwargs["port"]))
            for client in fresh]
    assert seen[0] == seen[1]
    assert b'[0 client] "SET" "k" "v"' in seen[0]
    assert b'[0 client] "AUTH" "(redacted)"' in seen[0]
    assert b'[0 lua] "set" "s" "x"' in seen[0]


def test_monitor_line_format_and_stop_on_disconnect(server):
    client = redis.Redis(port=server.port)
    mon = Raw(server.port)
    mon.send(["MONITOR"])
    mon.read_until(lambda b: b"+OK\r\n" in b)
    assert [x["flags"] for x in client.client_list()].count("O") == 1  # as Redis's CLIENT LIST
    before = time.time()
    client.set("key", "value")
    mon.read_until(lambda b: b'"SET"' in b)
    line = [x for x in mon.buf.split(b"\r\n") if b'"SET"' in x][0]
    match = _LINE.match(line)
    assert match and match.group(5) == b'"SET" "key" "value"'
    addr = client.client_info()["addr"]
    assert match.group(4).decode() == addr
    assert abs(float(b"%s.%s" % (match.group(1), match.group(2))) - before) < 5
    mon.close()
    wait_until(lambda: len(client.client_list()) == 1, message="monitor gone")
    assert client.set("after", "1")


# -- SLOWLOG ------------------------------------------------------------------------------

def _call(client, *args):
    """A command on a fresh RESP2 connection of ``client``'s server, its reply unparsed."""
    conn = redis.Redis(port=client.connection_pool.connection_kwargs["port"],
                       protocol=2).connection_pool.get_connection()
    conn.send_command(*args)
    return conn, conn.read_response()


def _entries(conn):
    """SLOWLOG GET without id, time, duration and address: what both servers agree on."""
    conn.send_command("SLOWLOG", "GET", "-1")
    return [(e[3], e[5]) for e in conn.read_response()]


def test_slowlog_every_command_with_threshold_zero(fresh):
    got = []
    for client in fresh:
        conn, _ = _call(client, "CONFIG", "SET", "slowlog-log-slower-than", "0")
        for args in (["SLOWLOG", "RESET"], ["CLIENT", "SETNAME", "worker"], ["SET", "a", "1"],
                     ["RPUSH", "l", *[str(i) for i in range(40)]], ["SET", "big", "x" * 300],
                     ["HELLO", "2", "AUTH", "default", "pw"],
                     ["CONFIG", "SET", "slowlog-log-slower-than", "1000000"],
                     ["GET", "a"]):  # under the threshold again
            conn.send_command(*args)
            try:
                conn.read_response()
            except redis.RedisError:
                pass
        got.append(_entries(conn))
        conn.send_command("SLOWLOG", "LEN")
        assert conn.read_response() == len(got[-1])
        conn.send_command("SLOWLOG", "RESET")
        assert conn.read_response() == b"OK"
        conn.send_command("SLOWLOG", "LEN")
        assert conn.read_response() == 0
    assert got[0] == got[1]
    assert len(got[0]) == 6  # reset, setname, set, rpush, set, hello
    assert got[0][2][0][-1] == b"... (11 more arguments)"
    assert got[0][1][0][2] == b"x" * 128 + b"... (172 more bytes)"
    assert got[0][0] == ([b"HELLO", b"2", b"AUTH", b"(redacted)", b"(redacted)"], b"worker")


def test_slowlog_entry_fields(server):
    client = redis.Redis(port=server.port)
    conn, _ = _call(client, "CONFIG", "SET", "slowlog-log-slower-than", "0")
    for args in (["CLIENT", "SETNAME", "me"], ["SET", "k", "v"], ["SLOWLOG", "GET", "1"]):
        conn.send_command(*args)
        entry = conn.read_response()
    entry = entry[0]
    assert entry[0] >= 1 and abs(entry[1] - time.time()) < 10 and entry[2] >= 0
    assert entry[3] == [b"SET", b"k", b"v"]
    conn.send_command("CLIENT", "INFO")
    addr = re.search(rb"addr=(\S+)", conn.read_response()).group(1)
    assert entry[4] == addr and entry[5] == b"me"


def test_slowlog_max_len_keeps_the_newest(server):
    conn, _ = _call(redis.Redis(port=server.port), "CONFIG", "SET", "slowlog-max-len", "3")
    for args in (["CONFIG", "SET", "slowlog-log-slower-than", "0"],
                 *(["SET", f"k{i}", str(i)] for i in range(10))):
        conn.send_command(*args)
        conn.read_response()
    assert [args for args, _ in _entries(conn)] == [
        [b"SET", b"k9", b"9"], [b"SET", b"k8", b"8"], [b"SET", b"k7", b"7"]]
    conn.send_command("CONFIG", "SET", "slowlog-max-len", "0")
    conn.read_response()
    conn.send_command("SLOWLOG", "LEN")
    assert conn.read_response() == 0


# -- LATENCY ------------------------------------------------------------------------------

def test_latency_monitor_records_slow_commands(server):
    client = redis.Redis(port=server.port)
    client.rpush("big", *range(50000))
    client.config_set("latency-monitor-threshold", 1)
    client.sort("big")  # tens of ms in Python: over 1 ms
    latest = client.execute_command("LATENCY", "LATEST")
    assert latest and latest[0][0] == b"command" and latest[0][2] >= 1
    history = client.execute_command("LATENCY", "HISTORY", "command")
    assert history and history[-1][1] >= 1
    assert b"command" in client.execute_command("LATENCY", "GRAPH", "command")
    assert b"latency spikes" in client.execute_command("LATENCY", "DOCTOR")
    assert client.execute_command("LATENCY", "RESET") == 1
    assert client.execute_command("LATENCY", "LATEST") == []


# -- CLIENT PAUSE ---------------------------------------------------------------------------

def test_pause_write_holds_set_not_get_until_unpause(server):
    control = redis.Redis(port=server.port)
    control.set("k", "old")
    writer = Raw(server.port)
    assert control.execute_command("CLIENT", "PAUSE", 60000, "WRITE")
    writer.send(["SET", "k", "new"], ["GET", "k"])
    reader = redis.Redis(port=server.port, socket_timeout=5)
    assert reader.get("k") == b"old"  # reads go on during the pause
    assert writer.nothing_for(0.3)  # the SET waits
    assert control.execute_command("CLIENT", "UNPAUSE")
    assert writer.read_until(lambda b: b.endswith(b"$3\r\nnew\r\n")) == b"+OK\r\n$3\r\nnew\r\n"
    writer.close()


def test_pause_ends_by_itself(server):
    control = redis.Redis(port=server.port)
    writer = Raw(server.port)
    start = time.monotonic()
    control.execute_command("CLIENT", "PAUSE", 300, "WRITE")
    writer.send(["INCR", "n"])
    assert writer.read_until(lambda b: b == b":1\r\n") == b":1\r\n"
    assert time.monotonic() - start >= 0.25
    writer.close()


def test_pause_all_holds_reads_and_eval_waits_in_write(server):
    control = redis.Redis(port=server.port)
    control.execute_command("CLIENT", "PAUSE", 60000, "WRITE")
    evaler, publisher = Raw(server.port), Raw(server.port)
    evaler.send(["EVAL", "return 1", "0"])
    publisher.send(["PUBLISH", "ch", "m"])
    assert evaler.nothing_for(0.2) and publisher.nothing_for(0.05)
    control.execute_command("CLIENT", "UNPAUSE")
    evaler.read_until(lambda b: b == b":1\r\n")
    publisher.read_until(lambda b: b == b":0\r\n")
    control.execute_command("CLIENT", "PAUSE", 1500, "ALL")
    reader, unpauser = Raw(server.port), Raw(server.port)
    reader.send(["PING"])
    unpauser.send(["CLIENT", "UNPAUSE"])  # as Redis: ALL holds CLIENT UNPAUSE too
    assert reader.nothing_for(0.3) and unpauser.nothing_for(0.01)
    reader.read_until(lambda b: b == b"+PONG\r\n")
    unpauser.read_until(lambda b: b == b"+OK\r\n")
    for raw in (evaler, publisher, reader, unpauser):
        raw.close()


def test_pause_write_holds_queued_writes_and_keeps_expired_keys(server):
    control = redis.Redis(port=server.port)
    control.set("ttl", "v", px=100)
    control.execute_command("CLIENT", "PAUSE", 60000, "WRITE")
    wait_until(lambda: control.get("ttl") is None, message="key reads as expired")
    assert control.dbsize() == 1  # not deleted while paused
    txn = Raw(server.port)
    txn.send(["MULTI"], ["GET", "ttl"], ["SET", "x", "1"], ["EXEC"])
    txn.read_until(lambda b: b == b"+OK\r\n+QUEUED\r\n")
    assert txn.nothing_for(0.2)
    control.execute_command("CLIENT", "UNPAUSE")
    txn.read_until(lambda b: b.endswith(b"*2\r\n$-1\r\n+OK\r\n"))
    wait_until(lambda: control.dbsize() == 1, message="expired key deleted after the pause")
    assert control.get("x") == b"1"
    txn.close()


# -- CLIENT REPLY ---------------------------------------------------------------------------

def test_client_reply_off_and_skip_match_redis(fresh):
    got = []
    for client in fresh:
        raw = Raw(client.connection_pool.connection_kwargs["port"])
        raw.send(["CLIENT", "REPLY", "OFF"], ["SET", "a", "1"], ["GET", "a"],
                 ["CLIENT", "REPLY", "SKIP"], ["CLIENT", "REPLY", "ON"], ["GET", "a"],
                 ["CLIENT", "REPLY", "SKIP"], ["INCR", "a"], ["INCR", "a"],
                 ["CLIENT", "REPLY", "SKIP"], ["CLIENT", "REPLY", "OFF"], ["SET", "b", "2"],
                 ["CLIENT", "REPLY", "ON"], ["ECHO", "end"])
        got.append(raw.read_until(lambda b: b.endswith(b"$3\r\nend\r\n")))
        raw.close()
    assert got[0] == got[1] == b"+OK\r\n$1\r\n1\r\n:3\r\n+OK\r\n$3\r\nend\r\n"


def test_reset_turns_replies_on_and_ends_monitor_mode_as_redis(fresh):
    got = []
    for client in fresh:
        port = client.connection_pool.connection_kwargs["port"]
        raw = Raw(port)
        raw.send(["CLIENT", "REPLY", "OFF"], ["RESET"], ["PING"], ["MONITOR"], ["RESET"],
                 ["ECHO", "end"])
        got.append(raw.read_until(lambda b: b.endswith(b"$3\r\nend\r\n")))
        wait_until(lambda: "O" not in [x["flags"] for x in client.client_list()],
                   message="monitor mode ended")
        raw.close()
    assert got[0] == got[1] == b"+RESET\r\n+PONG\r\n+OK\r\n+RESET\r\n$3\r\nend\r\n"
