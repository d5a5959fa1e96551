"""Pipelined EVALSHAs (the run handler, scripting/evalsha.py) against redis-server and
against the same commands sent one at a time: replies, data, the log, the slow log,
LATENCY HISTOGRAM, command stats and SCRIPT KILL in the middle of a pipeline."""
from __future__ import annotations

import hashlib
import socket
import time
from typing import Any, List

import pytest
import redis

from distcache.protocol import NOT_ENOUGH, ReplyParser, encode_command
from persistence.persistence_helpers import incr_files, start
from scripting_helpers import fingerprint, pair  # noqa: F401 (a fixture)
from servers import as_map

pytest.importorskip("lupa")

SCRIPTS = {
    "get": "return redis.call('GET', KEYS[1])",
    "args": "return {KEYS[1], ARGV[1], ARGV[2], #KEYS, #ARGV}",
    "none": "return 7",
    "float": "return 3.99",
    "table": "return {1, 'two', {3}, false, {ok='fine'}}",
    "nil": "return nil",
    "resp3": "redis.setresp(3); return redis.call('HGETALL', KEYS[1])",
    "error": "return redis.error_reply('MINE oops')",
    "raise": "local x = nil; return x.y",
    "wrongtype": "return redis.call('GET', KEYS[1])",
    "pcall": "return redis.pcall('INCR', KEYS[1])",
    "set": "return redis.call('SET', KEYS[1], ARGV[1])",
    "writes": "redis.call('INCR', KEYS[1]); return redis.call('RPUSH', KEYS[2], ARGV[1])",
    "norepl": "redis.set_repl(redis.REPL_NONE); return redis.call('SET', KEYS[1], 'x')",
    "shebang": "#!lua flags=no-writes\nreturn redis.call('GET', KEYS[1])",
    "select": "redis.call('SELECT', 1); return redis.call('SET', KEYS[1], 'db1')",
}
SHA = {name: hashlib.sha1(body.encode()).hexdigest() for name, body in SCRIPTS.items()}
SEED = [("SET", "str", "hello"), ("HSET", "h", "a", "1"), ("RPUSH", "l", "x"), ("SET", "n", "5")]

#: One pipeline: plain runs, every exit of the run handler, and the general path's forms.
PIPELINE: List[tuple] = [
    ("EVALSHA", SHA["get"], 1, "str"), ("EVALSHA", SHA["get"], 1, "missing"),
    ("EVALSHA", SHA["args"], 1, "k", "a1", "a2"), ("EVALSHA", SHA["none"], 0),
    ("EVALSHA", SHA["float"], 0), ("EVALSHA", SHA["table"], 0), ("EVALSHA", SHA["nil"], 0),
    ("EVALSHA", SHA["resp3"], 1, "h"), ("EVALSHA", SHA["error"], 0),
    ("EVALSHA", SHA["raise"], 0), ("EVALSHA", SHA["wrongtype"], 1, "l"),
    ("EVALSHA", SHA["pcall"], 1, "str"), ("EVALSHA", SHA["get"], 1, "str"),
    ("EVALSHA", SHA["set"], 1, "k1", "v1"), ("EVALSHA", SHA["get"], 1, "k1"),
    ("EVALSHA", SHA["writes"], 2, "n", "l", "y"), ("EVALSHA", SHA["get"], 1, "n"),
    ("EVALSHA", SHA["norepl"], 1, "k2"), ("EVALSHA", SHA["shebang"], 1, "str"),
    ("EVALSHA", SHA["select"], 1, "k3"), ("EVALSHA", SHA["get"], 1, "k3"),
    ("EVALSHA", "f" * 40, 0), ("EVALSHA", SHA["get"].upper(), 1, "str"),
    ("EVALSHA", SHA["get"], "x", "str"), ("EVALSHA", SHA["get"], 2, "str"),
    ("EVALSHA", SHA["get"], -1, "str"), ("EVALSHA", SHA["args"], 9, *"abcdefghij"),
    ("EVALSHA", SHA["get"], "01", "str"), ("EVALSHA", SHA["get"], 1, "str"),
    ("GET", "str"), ("evalsha", SHA["get"], 1, "str"), ("EvalSha", SHA["none"], 0),
    ("MULTI",), ("EVALSHA", SHA["get"], 1, "str"), ("EVALSHA", SHA["set"], 1, "k4", "v"),
    ("EVALSHA", SHA["get"], 1, "k4"), ("EXEC",), ("EVALSHA", SHA["get"], 1, "k4"),
]


def _send(port: int, commands: List[tuple], resp3: bool = False) -> bytes:
    """Every command in one write; the replies' exact bytes (after HELLO's)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        if resp3:
            sock.sendall(encode_command([b"HELLO", b"3"]))
            _read(sock, 1)
        sock.sendall(b"".join(encode_command([str(a).encode() for a in cmd])
                              for cmd in commands))
        return _read(sock, len(commands))
    finally:
        sock.close()


def _read(sock: socket.socket, count: int) -> bytes:
    data = b""
    parser = ReplyParser()
    while count:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        data += chunk
        parser.feed(chunk)
        while count and parser.get() is not NOT_ENOUGH:
            count -= 1
    return data


def _prepare(client: Any) -> None:
    client.flushall()
    client.script_flush()
    for args in SEED:
        client.execute_command(*args)
    for body in SCRIPTS.values():
        client.script_load(body)
@pytest.mark.parametrize("resp3", [False, True], ids=["resp2", "resp3"])
def test_pipelined_evalshas_match_redis(pair, resp3):
    results = []
    for port, client in pair:
        _prepare(client)
        results.append((_send(port, PIPELINE, resp3), fingerprint(client)))
    ours, theirs = results
    assert ours[0].split(b"\r\n") == theirs[0].split(b"\r\n")
    assert ours[1] == theirs[1]


def test_pipelined_evalshas_over_maxmemory_match_redis(pair):
    """The run handler's OOM check per script, as the general path's (maxmemory 1)."""
    results = []
    for port, client in pair:
        _prepare(client)
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", 1)
        try:
            results.append(_send(port, [cmd for cmd in PIPELINE if cmd[0] == "EVALSHA"]))
        finally:
            client.config_set("maxmemory", 0)
        results.append(fingerprint(client))
    assert results[0].split(b"\r\n") == results[2].split(b"\r\n")
    assert results[1] == results[3]


def _stats(client: Any) -> tuple:
    stats = client.info("commandstats")["cmdstat_evalsha"]
    histogram = as_map(client.execute_command("LATENCY", "HISTOGRAM", "evalsha"))  # RESP2: lists
    return stats["calls"], stats["failed_calls"], as_map(histogram[b"evalsha"])[b"calls"]


@pytest.mark.parametrize("latency", [0, 1], ids=["slowlog-times", "everything-wrapped"])
def test_pipelined_stats_equal_one_at_a_time(shared_server, latency):
    """Calls, failures and LATENCY HISTOGRAM's count as if sent one by one, whether the
    run handler times the calls or the slow log's wrapper does (latency monitor on)."""
    client = redis.Redis(host="127.0.0.1", port=shared_server.port, socket_timeout=10)
    client.config_set("latency-monitor-threshold", latency)
    try:
        counts = []
        for pipelined in (True, False):
            _prepare(client)
            client.config_resetstat()
            client.execute_command("LATENCY", "RESET")
            if pipelined:
                _send(shared_server.port, PIPELINE)
            else:
                for command in PIPELINE:
                    _send(shared_server.port, [command])
            counts.append(_stats(client))
    finally:
        client.config_set("latency-monitor-threshold", 0)
        client.close()
    evalshas = sum(1 for cmd in PIPELINE if cmd[0].lower() == "evalsha")
    assert counts[0] == counts[1]
    assert counts[0][2] == evalshas  # every call in the histogram, once


def test_slow_script_in_a_pipeline_is_in_the_slow_log(server):
    client = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=30)
    fast = client.script_load(SCRIPTS["none"])
    # Slow beyond the default 10 ms threshold on any host: 20 million Lua iterations.
    slow = client.script_load("for i = 1, 20000000 do end return 1")
    client.slowlog_reset()
    replies = _send(server.port, [("EVALSHA", fast, 0), ("EVALSHA", slow, 0, "marker"),
                                  ("EVALSHA", fast, 0)])
    assert replies == b":7\r\n:1\r\n:7\r\n"
    entries = [entry["command"] for entry in client.slowlog_get(128)]
    assert f"EVALSHA {slow} 0 marker".encode() in entries
    client.close()


def test_script_kill_in_the_middle_of_a_pipeline(server):
    """A pipeline's busy script answers BUSY to others and is killed; the scripts after
    it in the same read run as usual."""
    client = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=30)
    client.config_set("busy-reply-threshold", 50)
    fast = client.script_load(SCRIPTS["get"])
    endless = client.script_load("while true do end")
    client.set("str", "v")
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.sendall(b"".join(encode_command([str(a).encode() for a in cmd]) for cmd in [
        ("EVALSHA", fast, 1, "str"), ("EVALSHA", endless, 0), ("EVALSHA", fast, 1, "str")]))
    other = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=30)
    deadline = time.monotonic() + 30
    while True:
        try:
            other.ping()
        except redis.exceptions.BusyLoadingError as exc:
            assert "BUSY" in str(exc) or "busy" in str(exc)
            break
        except redis.ResponseError as exc:
            assert str(exc).startswith("BUSY")
            break
        assert time.monotonic() < deadline, "the script never got busy"
    assert other.script_kill()
    replies = _read(sock, 3)
    sock.close()
    assert replies.startswith(b"$1\r\nv\r\n-ERR Script killed by user with SCRIPT KILL...")
    assert replies.endswith(b"\r\n$1\r\nv\r\n")
    assert client.ping()
    other.close()
    client.close()


def test_pipelined_write_scripts_log_their_effects_in_order(tmp_path):
    proc = start(tmp_path, "--appendfsync", "always", "--save", "")
    try:
        r = redis.Redis(host="127.0.0.1", port=proc.port, socket_timeout=20)
        r.set("n", 1)
        shas = {name: r.script_load(SCRIPTS[name]) for name in ("get", "set", "writes", "norepl")}
        replies = _send(proc.port, [
            ("EVALSHA", shas["get"], 1, "n"), ("EVALSHA", shas["writes"], 2, "n", "list", "a"),
            ("EVALSHA", shas["get"], 1, "n"), ("EVALSHA", shas["set"], 1, "k", "one"),
            ("EVALSHA", shas["norepl"], 1, "hidden"),
            ("EVALSHA", shas["writes"], 2, "n", "list", "b"),
            ("EVALSHA", shas["get"], 1, "n")])
        log = b"".join(path.read_bytes() for path in incr_files(tmp_path))
    finally:
        proc.stop()
    assert replies == b"$1\r\n1\r\n:1\r\n$1\r\n2\r\n+OK\r\n+OK\r\n:2\r\n$1\r\n3\r\n"
    assert b"EVALSHA" not in log.upper() and b"hidden" not in log
    # Each two-write script in its own MULTI/EXEC, in the order they ran.
    assert log.count(b"MULTI") == 2 and log.count(b"EXEC") == 2
    order = [log.index(word) for word in (b"$1\r\na\r\n", b"one", b"$1\r\nb\r\n")]
    assert order == sorted(order)


#: One script called with every split of up to 8 keys and arguments, lone and then
#: pipelined: its first plain call binds it a runner for that shape, the others take
#: the shared runners (scripting/lua.py's binders), and KEYS and ARGV must be the same.
SHAPES_SCRIPT = "return {#KEYS, #ARGV, table.concat(KEYS, ','), table.concat(ARGV, ',')}"
SHAPES = [(2, ["k1", "k2", "a1"])] + [
    (nkeys, [f"x{i}" for i in range(n)]) for n in range(9) for nkeys in range(n + 1)]


def test_evalsha_shapes_match_redis(pair):
    sha = hashlib.sha1(SHAPES_SCRIPT.encode()).hexdigest()
    calls = [("EVALSHA", sha, nkeys, *args) for nkeys, args in SHAPES]
    results = []
    for port, client in pair:
        client.script_flush()
        client.script_load(SHAPES_SCRIPT)
        lone = b"".join(_send(port, [call]) for call in calls)
        results.append((lone, _send(port, calls)))
    assert results[0] == results[1]
    assert results[0][0] == results[0][1]  # lone and pipelined alike
