"""Blocked XREAD / XREADGROUP readers and FLUSHALL, FLUSHDB, SWAPDB and overwrites,
compared with redis-server 7.0.15: what the blocked reader gets, and when."""
from __future__ import annotations

import time
from typing import Any, List, Sequence, Tuple

import pytest
import redis

Cmd = Tuple[str, ...]

GROUP: List[Cmd] = [("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")]
XRG: Cmd = ("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">")
XR: Cmd = ("XREAD", "BLOCK", "0", "STREAMS", "s", "$")
IN_DB1 = [("SELECT", "1")]
BACK = [("SELECT", "0")]

#: name -> (setup, blocking read, action, follow-up when the reader is still blocked)
SCENARIOS = {
    "xreadgroup_flushall": (GROUP, XRG, [("FLUSHALL",)], [("XADD", "s", "1-1", "f", "v")]),
    "xreadgroup_flushall_async": (GROUP, XRG, [("FLUSHALL", "ASYNC")], []),
    "xreadgroup_flushdb": (GROUP, XRG, [("FLUSHDB",)], [("XADD", "s", "1-1", "f", "v")]),
    "xreadgroup_two_keys_flushdb": (
        GROUP + [("XGROUP", "CREATE", "s2", "g", "$", "MKSTREAM")],
        ("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", "s2", ">", ">"),
        [("FLUSHDB",)], []),
    "xreadgroup_flushdb_of_another_db": (
        GROUP, XRG, IN_DB1 + [("FLUSHDB",)] + BACK, [("XADD", "s", "1-1", "f", "v")]),
    "xreadgroup_flushall_in_multi_recreated": (
        GROUP, XRG, [("MULTI",), ("FLUSHALL",), ("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"),
                     ("EXEC",)], [("XADD", "s", "1-1", "f", "v")]),
    "xread_flushall": ([("XADD", "s", "5-1", "a", "b")], XR, [("FLUSHALL",)],
                       [("XADD", "s", "1-1", "f", "v"), ("XADD", "s", "6-1", "f", "v")]),
    "xread_flushdb_empty": ([], ("XREAD", "BLOCK", "0", "STREAMS", "s", "0-1"), [("FLUSHDB",)],
                            [("XADD", "s", "1-1", "f", "v")]),
    "xreadgroup_swapdb_other_empty": (GROUP, XRG, [("SWAPDB", "0", "1")],
                                      [("SWAPDB", "0", "1"), ("XADD", "s", "1-1", "f", "v")]),
    "xreadgroup_swapdb_no_group": (
        GROUP + IN_DB1 + [("XADD", "s", "1-1", "a", "b")] + BACK, XRG, [("SWAPDB", "0", "1")], []),
    "xreadgroup_swapdb_group_with_entries": (
        GROUP + IN_DB1 + [("XADD", "s", "1-1", "a", "b"), ("XGROUP", "CREATE", "s", "g", "0")]
        + BACK, XRG, [("SWAPDB", "0", "1")], []),
    "xreadgroup_swapdb_group_nothing_new": (
        GROUP + IN_DB1 + [("XADD", "s", "1-1", "a", "b"), ("XGROUP", "CREATE", "s", "g", "$")]
        + BACK, XRG, [("SWAPDB", "0", "1")], [("XADD", "s", "2-1", "f", "v")]),
    "xreadgroup_swapdb_string": (GROUP + IN_DB1 + [("SET", "s", "x")] + BACK, XRG,
                                 [("SWAPDB", "0", "1")], []),
    "xreadgroup_swapdb_then_flush": (GROUP, XRG, [("SWAPDB", "0", "1")] + IN_DB1
                                     + [("FLUSHDB",)] + BACK, []),
    "xread_swapdb_newer": (
        [("XADD", "s", "5-1", "a", "b")] + IN_DB1 + [("XADD", "s", "9-1", "a", "b")] + BACK, XR,
        [("SWAPDB", "0", "1")], []),
    "xread_swapdb_older": (
        [("XADD", "s", "5-1", "a", "b")] + IN_DB1 + [("XADD", "s", "3-1", "a", "b")] + BACK, XR,
        [("SWAPDB", "0", "1")], [("XADD", "s", "4-1", "a", "b"), ("XADD", "s", "7-1", "a", "b")]),
    "xread_swapdb_string": (
        [("XADD", "s", "5-1", "a", "b")] + IN_DB1 + [("SET", "s", "x")] + BACK, XR,
        [("SWAPDB", "0", "1")], [("SWAPDB", "0", "1"), ("XADD", "s", "6-1", "a", "b")]),
    "xreadgroup_set_over": (GROUP, XRG, [("SET", "s", "x")], []),
    "xreadgroup_rename_string_over": (GROUP + [("SET", "t", "x")], XRG, [("RENAME", "t", "s")], []),
    "xreadgroup_rename_stream_over": (
        GROUP + [("XADD", "t", "9-1", "a", "b"), ("XGROUP", "CREATE", "t", "g", "0")], XRG,
        [("RENAME", "t", "s")], []),
    "xreadgroup_del": (GROUP, XRG, [("DEL", "s")], []),
    "xread_del": ([("XADD", "s", "5-1", "a", "b")], XR, [("DEL", "s")],
                  [("XADD", "s", "6-1", "f", "v")]),
}


def _blocked(admin: redis.Redis) -> int:
    return int(admin.info("clients")["blocked_clients"])


def _reply(conn: redis.Connection) -> Any:
    try:
        return conn.read_response()
    except redis.ResponseError as exc:
        return ("error", str(exc))


def _run(port: int, scenario: Sequence[Any]) -> List[Any]:
    """What the reader got after the action and after the follow-up (None: blocked)."""
    setup, read, action, follow_up = scenario
    admin = redis.Redis(port=port, socket_timeout=10, single_connection_client=True)
    reader = redis.Connection(port=port, socket_timeout=10)
    try:
        admin.flushall()
        for cmd in setup:
            admin.execute_command(*cmd)
        reader.send_command(*read)
        deadline = time.monotonic() + 10
        while _blocked(admin) != 1:
            assert time.monotonic() < deadline, "the reader never blocked"
        seen = []
        for commands in (action, follow_up):
            for cmd in commands:
                admin.execute_command(*cmd)
            # Both servers unblock a reader before the writer's next command runs.
            seen.append(_reply(reader) if _blocked(admin) == 0 else None)
            if seen[-1] is not None:
                break
        if _blocked(admin):
            admin.execute_command("CLIENT", "UNBLOCK", _reader_id(admin))
        return seen
    finally:
        reader.disconnect()
        admin.close()


def _reader_id(admin: redis.Redis) -> str:
    for line in admin.execute_command("CLIENT", "LIST").decode().splitlines():
        if "flags=b" in line:
            return line.split()[0].split("=")[1]
    return "0"


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_blocked_stream_reader_as_redis(shared_server, reference_redis, name):
    ours = _run(shared_server.port, SCENARIOS[name])
    theirs = _run(reference_redis.port, SCENARIOS[name])
    assert ours == theirs


def test_flushall_ends_a_blocked_xreadgroup_with_unblocked(shared_server):
    got = _run(shared_server.port, SCENARIOS["xreadgroup_flushall"])
    assert got == [("error", "UNBLOCKED the stream key no longer exists")]
