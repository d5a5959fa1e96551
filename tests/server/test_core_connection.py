"""Connection and server commands: PING, HELLO, AUTH, RESET, CLIENT, COMMAND,
INFO, CONFIG, TIME, SHUTDOWN, FUNCTION/SCRIPT FLUSH.

Most tests run on distcache and a real redis-server; those about
distcache-only details (``distcache_version``, process exit) run on
distcache alone.
"""
from __future__ import annotations

import time

import pytest
import redis

from core_helpers import (OK, SYNTAX, RawClient, bulk, num, run_steps,  # noqa: F401
                          target_server, tr, traw, wait_until)
from servers import distcache_server

def test_ping_echo(traw):
    run_steps(traw, [
        (("PING",), b"+PONG\r\n"),
        (("PING", "hello"), bulk(b"hello")),
        (("PING", ""), bulk(b"")),
        (("PING", "a", "b"), b"-ERR wrong number of arguments for 'ping' command\r\n"),
        (("ECHO", "hi there"), bulk(b"hi there")),
        (("ECHO",), b"-ERR wrong number of arguments for 'echo' command\r\n"),
    ])


def test_quit_replies_ok_then_closes(target_server):
    with RawClient(target_server.port) as raw:
        raw.send(b"*1\r\n$4\r\nQUIT\r\n*1\r\n$4\r\nPING\r\n")
        assert raw.read_until_closed() == OK


def test_hello_protocol_switch(target_server):
    with RawClient(target_server.port) as raw:
        reply = raw.call("HELLO", "3")
        assert reply.startswith(b"%")
        assert b"$5\r\nproto\r\n:3\r\n" in reply and b"$7\r\nversion\r\n$6\r\n7.0.15\r\n" in reply
        assert raw.call("GET", "missing") == b"_\r\n"
        assert raw.call("HELLO", "2").startswith(b"*")
        assert raw.call("GET", "missing") == b"$-1\r\n"
        assert raw.call("HELLO").startswith(b"*")  # no argument: keep RESP2
        assert raw.call("HELLO", "4") == b"-NOPROTO unsupported protocol version\r\n"
        assert raw.call("HELLO", "1") == b"-NOPROTO unsupported protocol version\r\n"
        assert raw.call("HELLO", "abc") == \
            b"-ERR Protocol version is not an integer or out of range\r\n"
        assert raw.call("HELLO", "3", "FOO") == b"-ERR Syntax error in HELLO option 'FOO'\r\n"
        assert raw.call("HELLO", "3", "SETNAME") == \
            b"-ERR Syntax error in HELLO option 'SETNAME'\r\n"
        assert raw.call("GET", "missing") == b"$-1\r\n"  # failed HELLOs changed nothing
        reply = raw.call("HELLO", "2", "SETNAME", "conn-a", "AUTH", "default", "any")
        assert reply.startswith(b"*")  # no requirepass: the default user takes any password
        assert raw.call("CLIENT", "GETNAME") == bulk(b"conn-a")


def test_hello_fields_through_redis_py(target_server):
    client = redis.Redis(port=target_server.port, protocol=3, socket_timeout=10)
    try:
        info = client.execute_command("HELLO", "3")
        info = {k.decode() if isinstance(k, bytes) else k: v for k, v in info.items()}
        assert info["server"] == b"redis" and info["version"] == b"7.0.15"
        assert info["proto"] == 3 and info["mode"] == b"standalone"
        assert info["role"] == b"master" and info["modules"] == []
        assert info["id"] == client.client_id()
    finally:
        client.close()


def test_auth_without_password(traw):
    run_steps(traw, [
        (("AUTH", "x"), b"-ERR AUTH <password> called without any password configured for "
                        b"the default user. Are you sure your configuration is correct?\r\n"),
        (("AUTH", "default", "whatever"), OK),
        (("AUTH", "nobody", "x"),
         b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"),
        (("AUTH", "a", "b", "c"), SYNTAX),
    ])


def test_reset(target_server):
    with RawClient(target_server.port) as raw:
        raw.call("HELLO", "3")
        raw.call("SELECT", "5")
        raw.call("CLIENT", "SETNAME", "before")
        assert raw.call("RESET") == b"+RESET\r\n"
        assert raw.call("CLIENT", "GETNAME") == b"$-1\r\n"  # RESP2 again, no name
        raw.call("SET", "where", "db0")
        assert raw.call("SELECT", "5") == OK
        assert raw.call("EXISTS", "where") == num(0)
        assert raw.call("RESET", "x") == b"-ERR wrong number of arguments for 'reset' command\r\n"


def test_client_id_name_info_list(target_server):
    with RawClient(target_server.port) as a, RawClient(target_server.port) as b:
        id_a = int(a.call("CLIENT", "ID")[1:-2])
        id_b = int(b.call("CLIENT", "ID")[1:-2])
        assert id_b > id_a > 0
        assert a.call("CLIENT", "GETNAME") == b"$-1\r\n"
        assert a.call("CLIENT", "SETNAME", "alpha") == OK
        assert a.call("CLIENT", "GETNAME") == bulk(b"alpha")
        assert a.call("CLIENT", "SETNAME", "has space") == \
            b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
        assert a.call("CLIENT", "SETNAME", "") == OK
        assert a.call("CLIENT", "GETNAME") == b"$-1\r\n"
        a.call("CLIENT", "SETNAME", "alpha")
        a.call("SELECT", "3")
        info = a.call("CLIENT", "INFO").split(b"\r\n", 1)[1]
        fields = dict(f.split(b"=", 1) for f in info.strip().split(b" "))
        assert fields[b"id"] == b"%d" % id_a and fields[b"name"] == b"alpha"
        assert fields[b"db"] == b"3" and fields[b"resp"] == b"2"
        names = [f.split(b"=", 1)[0].decode() for f in info.strip().split(b" ")]
        redis70 = ["id", "addr", "laddr", "fd", "name", "age", "idle", "flags", "db", "sub",
                   "psub", "ssub", "multi", "qbuf", "qbuf-free", "argv-mem", "multi-mem", "rbs",
                   "rbp", "obl", "oll", "omem", "tot-mem", "events", "cmd", "user", "redir",
                   "resp"]
        assert names[:len(redis70)] == redis70
        listing = b.call("CLIENT", "LIST")
        lines = listing.split(b"\r\n", 1)[1].strip().split(b"\n")
        ids = {int(line.split(b" ")[0][3:]) for line in lines}
        assert {id_a, id_b} <= ids
        only_a = b.call("CLIENT", "LIST", "ID", str(id_a)).split(b"\r\n", 1)[1]
        assert only_a.startswith(b"id=%d " % id_a) and only_a.rstrip().count(b"\n") == 0
        assert b.call("CLIENT", "LIST", "ID", "abc") == b"-ERR Invalid client ID\r\n"
        assert b.call("CLIENT", "LIST", "TYPE", "foo") == b"-ERR Unknown client type 'foo'\r\n"


def test_client_kill(target_server):
    with RawClient(target_server.port) as victim, RawClient(target_server.port) as killer:
        victim_id = int(victim.call("CLIENT", "ID")[1:-2])
        addr = [line for line in killer.call("CLIENT", "LIST").split(b"\n")
                if line.startswith(b"id=%d " % victim_id)][0].split(b" ")[1][5:]
        assert killer.call("CLIENT", "KILL", addr) == OK
        assert victim.read_until_closed() == b""
        assert killer.call("CLIENT", "KILL", addr) == b"-ERR No such client\r\n"
    with RawClient(target_server.port) as victim, RawClient(target_server.port) as killer:
        victim_id = int(victim.call("CLIENT", "ID")[1:-2])
        assert killer.call("CLIENT", "KILL", "ID", str(victim_id)) == num(1)
        assert victim.read_until_closed() == b""
        assert killer.call("CLIENT", "KILL", "ID", str(victim_id)) == num(0)
        assert killer.call("CLIENT", "KILL", "FOO", "bar") == SYNTAX
        assert killer.call("CLIENT", "KILL", "TYPE", "foo") == \
            b"-ERR Unknown client type 'foo'\r\n"
        assert killer.call("CLIENT", "KILL", "USER", "nobody") == \
            b"-ERR No such user 'nobody'\r\n"
        assert killer.call("CLIENT", "KILL", "TYPE", "pubsub") == num(0)
        my_id = killer.call("CLIENT", "ID")[1:-2]
        assert killer.call("CLIENT", "KILL", "ID", my_id, "SKIPME", "yes") == num(0)
        assert killer.call("PING") == b"+PONG\r\n"


def test_command_introspection(tr):
    tr.response_callbacks.clear()  # the replies as sent
    count = tr.execute_command("COMMAND", "COUNT")
    assert count > 40
    names = tr.execute_command("COMMAND", "LIST")
    assert {b"get", b"set", b"scan", b"client", b"config"} <= set(names)
    info = tr.execute_command("COMMAND", "INFO", "get", "nosuchcommand")
    assert info[1] is None
    name, arity, flags, first, last, step = info[0][:6]
    assert (name, arity, first, last, step) == (b"get", 2, 1, 1, 1)
    assert set(flags) >= {b"readonly", b"fast"}
    assert tr.execute_command("COMMAND", "INFO", "set")[0][1] == -3
    docs = tr.execute_command("COMMAND", "DOCS", "get")
    pairs = (lambda x: x if isinstance(x, dict) else dict(zip(x[::2], x[1::2])))
    get_doc = pairs(pairs(docs)[b"get"])
    assert get_doc[b"group"] == b"string" and get_doc[b"since"] == b"1.0.0"
    assert tr.execute_command("COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2") == [b"a", b"b"]
    assert tr.execute_command("COMMAND", "LIST", "FILTERBY", "PATTERN", "getex") == [b"getex"]


def test_command_errors(traw):
    run_steps(traw, [
        (("COMMAND", "FOO"), b"-ERR unknown subcommand 'FOO'. Try COMMAND HELP.\r\n"),
        (("COMMAND", "COUNT", "x"),
         b"-ERR wrong number of arguments for 'command|count' command\r\n"),
        (("COMMAND", "GETKEYS", "set"),
         b"-ERR wrong number of arguments for 'command|getkeys' command\r\n"),
        (("COMMAND", "GETKEYS", "set", "a"),
         b"-ERR Invalid number of arguments specified for command\r\n"),
        (("COMMAND", "GETKEYS", "nosuch", "a"), b"-ERR Invalid command specified\r\n"),
        (("COMMAND", "GETKEYS", "ping", "a"), b"-ERR The command has no key arguments\r\n"),
    ])


def test_info_sections_and_fields(target_server, tr):
    info = tr.info("everything")
    assert info["redis_version"] == "7.0.15"
    if target_server.kind == "distcache":
        from distcache import __version__
        assert info["distcache_version"] == __version__
    for field in ("redis_mode", "process_id", "tcp_port", "uptime_in_seconds", "connected_clients",
                  "maxclients", "blocked_clients", "used_memory", "used_memory_human",
                  "used_memory_rss", "used_memory_peak", "maxmemory", "maxmemory_policy",
                  "loading", "rdb_changes_since_last_save", "aof_enabled",
                  "total_connections_received", "total_commands_processed",
                  "instantaneous_ops_per_sec", "rejected_connections", "expired_keys",
                  "evicted_keys", "keyspace_hits", "keyspace_misses", "role"):
        assert field in info, field
    assert info["tcp_port"] == target_server.port
    assert info["connected_clients"] >= 1
    with RawClient(target_server.port) as raw:
        text = raw.call("INFO").decode()
    headers = [line for line in text.split("\r\n") if line.startswith("# ")]
    for section in ("# Server", "# Clients", "# Memory", "# Persistence", "# Stats",
                    "# Replication", "# CPU", "# Modules", "# Cluster", "# Keyspace"):
        assert section in headers
    assert tr.info("cluster") == {"cluster_enabled": 0}
    assert set(tr.info("server")) >= {"redis_version", "process_id"}
    assert "keyspace_hits" not in tr.info("server")
    with RawClient(target_server.port) as raw:
        assert raw.call("INFO", "nosuchsection") == b"$0\r\n\r\n"
    tr.set("k1", "v")
    tr.set("k2", "v", ex=100)
    assert tr.info("keyspace")["db0"]["keys"] == 2
    assert tr.info("keyspace")["db0"]["expires"] == 1


def test_info_hit_miss_and_expired_counters(tr):
    """The same commands move Redis's counters by the same amounts."""
    tr.config_resetstat()
    tr.set("a", "1")
    for cmd in (("GET", "a"), ("GET", "b"), ("EXISTS", "a", "b"), ("TTL", "a"), ("TTL", "b"),
                ("TYPE", "a"), ("TYPE", "b"), ("MGET", "a", "b"), ("STRLEN", "a"),
                ("STRLEN", "b"), ("TOUCH", "a", "b"), ("GETRANGE", "a", "0", "1"),
                ("INCR", "a"), ("APPEND", "a", "x"), ("GETDEL", "a"), ("KEYS", "*"),
                ("SCAN", "0"), ("EXPIRE", "x", "1"), ("SETNX", "a", "1")):
        tr.execute_command(*cmd)
    stats = tr.info("stats")
    assert (stats["keyspace_hits"], stats["keyspace_misses"]) == (9, 7)
    tr.set("c", "1", px=1)
    wait_until(lambda: tr.info("stats")["expired_keys"] == 1, 10, message="expired_keys")
    tr.config_resetstat()
    stats = tr.info("stats")
    assert stats["keyspace_hits"] == stats["keyspace_misses"] == stats["expired_keys"] == 0


def test_config_get_set(traw, tr):
    assert tr.config_get("maxclients") == {"maxclients": "10000"}
    assert tr.config_get("timeout") == {"timeout": "0"}
    got = tr.config_get("max*")
    assert {"maxclients", "maxmemory", "maxmemory-policy"} <= set(got)
    assert tr.config_set("maxclients", "500") is True
    assert tr.config_get("maxclients") == {"maxclients": "500"}
    tr.config_set("maxclients", "10000")
    assert tr.execute_command("CONFIG", "SET", "timeout", "10", "hz", "20") == b"OK"
    assert tr.config_get("timeout") == {"timeout": "10"} and tr.config_get("hz") == {"hz": "20"}
    tr.config_set("timeout", "0")
    tr.config_set("hz", "1000")  # clamped, as Redis does
    assert tr.config_get("hz") == {"hz": "500"}
    tr.config_set("hz", "10")
    assert tr.config_get("nosuchdirective") == {}
    run_steps(traw, [
        (("CONFIG", "SET", "nosuch", "1"),
         b"-ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'\r\n"),
        (("CONFIG", "SET", "timeout"),
         b"-ERR wrong number of arguments for 'config|set' command\r\n"),
        (("CONFIG", "GET"), b"-ERR wrong number of arguments for 'config|get' command\r\n"),
        (("CONFIG", "RESETSTAT", "x"),
         b"-ERR wrong number of arguments for 'config|resetstat' command\r\n"),
        (("CONFIG", "RESETSTAT"), OK),
    ])
    at_least_1mb = "argument must be between 1048576 and 9223372036854775807 inclusive"
    for args, reason in [
        (("maxclients", "abc"), "argument couldn't be parsed into an integer"),
        (("timeout", "-1"), "argument must be between 0 and 2147483647 inclusive"),
        (("maxmemory", "10x"), "argument must be a memory value"),
        (("protected-mode", "maybe"), "argument must be 'yes' or 'no'"),
        (("timeout", "1", "timeout", "2"), "duplicate parameter"),
        (("proto-max-bulk-len", "100"), at_least_1mb),
        (("client-query-buffer-limit", "1000"), at_least_1mb),
    ]:
        assert traw.call("CONFIG", "SET", *args) == \
            b"-ERR CONFIG SET failed (possibly related to argument '%s') - %s\r\n" % (
                args[0].encode(), reason.encode())
    # All or nothing: a bad pair leaves the good one unapplied.
    assert traw.call("CONFIG", "SET", "timeout", "5", "maxclients", "abc").startswith(b"-ERR")
    assert tr.config_get("timeout") == {"timeout": "0"}


def test_config_get_reports_redis_defaults_of_inert_directives(tr, traw):
    # What redis-server 7.0.15 reports; tools read these at start-up.
    assert tr.config_get("maxmemory-*") == {
        "maxmemory-policy": "noeviction", "maxmemory-samples": "5",
        "maxmemory-clients": "0", "maxmemory-eviction-tenacity": "10"}
    assert tr.config_get("hash-max-listpack-entries") == {"hash-max-listpack-entries": "512"}
    assert tr.config_get("notify-keyspace-events") == {"notify-keyspace-events": ""}
    assert tr.config_get("include") == {}  # Redis shows no value for it either
    try:
        assert tr.config_set("slowlog-max-len", "256") is True
        assert tr.config_get("slowlog-max-len") == {"slowlog-max-len": "256"}
        # all or nothing: a failed pair leaves an inert directive as it was
        assert traw.call("CONFIG", "SET", "slowlog-log-slower-than", "5", "maxclients",
                         "abc").startswith(b"-ERR")
        assert tr.config_get("slowlog-log-slower-than") == {"slowlog-log-slower-than": "10000"}
    finally:
        tr.config_set("slowlog-max-len", "128")


def test_info_counts_bytes_errors_and_reads(tr, traw):
    tr.config_resetstat()
    assert "errorstat_ERR" not in tr.info("errorstats")
    traw.call("SET", "k", "v")
    traw.call("LPUSH", "k", "x")  # WRONGTYPE
    traw.call("NOSUCHCOMMAND")  # ERR
    traw.call("GET", "k", "extra")  # ERR: arity
    stats = tr.info("stats")
    assert stats["total_error_replies"] == 3
    assert tr.info("errorstats") == {"errorstat_ERR": {"count": 2},
                                     "errorstat_WRONGTYPE": {"count": 1}}
    assert "errorstat_ERR" in tr.info()  # a default section, as in Redis 7
    memory = tr.info("memory")
    assert memory["total_system_memory"] > 0
    assert {"used_memory_peak_perc", "used_memory_overhead", "used_memory_startup",
            "used_memory_dataset_perc", "mem_fragmentation_bytes"} <= set(memory)
    tr.config_resetstat()
    assert tr.info("errorstats") == {} and tr.info("stats")["total_error_replies"] == 0


def test_time(traw):
    reply = traw.call("TIME")
    parts = reply.split(b"\r\n")
    assert parts[0] == b"*2"
    seconds, micros = int(parts[2]), int(parts[4])
    assert abs(seconds - time.time()) < 60 and 0 <= micros < 1_000_000
    assert traw.call("TIME", "x") == b"-ERR wrong number of arguments for 'time' command\r\n"


def test_function_and_script_flush(traw):
    run_steps(traw, [
        (("FUNCTION", "FLUSH"), OK),
        (("FUNCTION", "FLUSH", "ASYNC"), OK),
        (("FUNCTION", "FLUSH", "SYNC"), OK),
        (("FUNCTION", "FLUSH", "x"), b"-ERR FUNCTION FLUSH only supports SYNC|ASYNC option\r\n"),
        (("SCRIPT", "FLUSH"), OK),
        (("SCRIPT", "FLUSH", "ASYNC"), OK),
        (("SCRIPT", "FLUSH", "x"), b"-ERR SCRIPT FLUSH only support SYNC|ASYNC option\r\n"),
    ])


def test_shutdown_errors_keep_the_server_up(traw):
    assert traw.call("SHUTDOWN", "FOO") == SYNTAX
    assert traw.call("SHUTDOWN", "ABORT") == b"-ERR No shutdown in progress.\r\n"
    assert traw.call("PING") == b"+PONG\r\n"


@pytest.mark.parametrize("mode", ["NOSAVE", "SAVE", None])
def test_shutdown_stops_the_process(tmp_path, mode):
    proc = distcache_server(tmp_path).start()
    try:
        with RawClient(proc.port) as raw:
            raw.send(b"*1\r\n$8\r\nSHUTDOWN\r\n" if mode is None else
                     b"*2\r\n$8\r\nSHUTDOWN\r\n$%d\r\n%s\r\n" % (len(mode), mode.encode()))
            assert raw.read_until_closed(20) == b""  # no reply, as in Redis
        assert proc.proc.wait(20) == 0
    finally:
        proc.stop()
