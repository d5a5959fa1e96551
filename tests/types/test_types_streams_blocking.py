"""Blocking XREAD and XREADGROUP: many readers, timeouts, order, deletion,
CLIENT UNBLOCK, MULTI, and what a served blocked reader writes to the log."""
from __future__ import annotations

import time

from test_types_blocking import NIL_ARRAY, blocked_clients, park, raw, wait_blocked  # noqa: F401


def entries(reply):
    """[(key, [id...])] of an XREAD/XREADGROUP reply."""
    return [(key[1], [e[1][0][1] for e in items[1]]) for key, items in
            (pair[1] for pair in reply[1])]


def test_many_xread_readers_all_get_the_new_entry(raw):
    admin = raw()
    admin.call("XADD", "s", "1-1", "a", "b")
    readers = [raw() for _ in range(8)]
    for i, r in enumerate(readers):
        park(admin, r, i + 1, "XREAD", "BLOCK", "0", "STREAMS", "s", "$")
    assert admin.call("XADD", "s", "2-1", "c", "d") == ("$", b"2-1")
    for r in readers:
        assert entries(r.read()) == [(b"s", [b"2-1"])]
    wait_blocked(admin, 0)


def test_xread_waits_for_ids_above_its_own(raw):
    admin, early, late = raw(), raw(), raw()
    park(admin, early, 1, "XREAD", "BLOCK", "0", "STREAMS", "s", "0-0")
    park(admin, late, 2, "XREAD", "BLOCK", "0", "STREAMS", "s", "5-0")
    admin.call("XADD", "s", "3-1", "a", "b")
    assert entries(early.read()) == [(b"s", [b"3-1"])]
    assert blocked_clients(admin) == 1  # 3-1 is not above 5-0
    admin.call("XADD", "s", "6-1", "a", "b")
    assert entries(late.read()) == [(b"s", [b"6-1"])]


def test_group_readers_share_entries_oldest_first(raw):
    admin = raw()
    admin.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
    workers = [raw() for _ in range(3)]
    for i, w in enumerate(workers):
        park(admin, w, i + 1, "XREADGROUP", "GROUP", "g", f"w{i}", "COUNT", "1", "BLOCK", "0",
             "STREAMS", "s", ">")
    for n in range(1, 4):
        admin.call("XADD", "s", f"{n}-1", "job", str(n))
    assert [entries(w.read()) for w in workers] == [[(b"s", [b"%d-1" % n])] for n in (1, 2, 3)]
    pending = admin.call("XPENDING", "s", "g")
    assert pending[1][0] == (":", b"3")


def test_one_xadd_serves_one_group_reader_when_count_takes_all(raw):
    admin, a, b = raw(), raw(), raw()
    admin.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
    park(admin, a, 1, "XREADGROUP", "GROUP", "g", "a", "BLOCK", "0", "STREAMS", "s", ">")
    park(admin, b, 2, "XREADGROUP", "GROUP", "g", "b", "BLOCK", "0", "STREAMS", "s", ">")
    admin.call("XADD", "s", "1-1", "x", "y")
    assert entries(a.read()) == [(b"s", [b"1-1"])]
    wait_blocked(admin, 1)  # b stays: the group has nothing new for it
    admin.call("XADD", "s", "2-1", "x", "y")
    assert entries(b.read()) == [(b"s", [b"2-1"])]


def test_timeouts_and_resp3_null(raw):
    admin, r2, r3 = raw(), raw(), raw(3)
    admin.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
    start = time.monotonic()
    park(admin, r2, 1, "XREAD", "BLOCK", "200", "STREAMS", "s", "$")
    park(admin, r3, 2, "XREADGROUP", "GROUP", "g", "c", "BLOCK", "200", "STREAMS", "s", ">")
    assert r2.read() == NIL_ARRAY
    assert r3.read() == ("_", b"")
    assert time.monotonic() - start >= 0.19
    # a timed-out group reader was never created as a consumer (as Redis 7.0)
    assert admin.call("XINFO", "CONSUMERS", "s", "g") == ("*", [])


def test_deleted_stream_unblocks_group_readers_only(raw):
    admin, plain, grouped = raw(), raw(), raw()
    admin.call("XADD", "s", "1-1", "a", "b")
    admin.call("XGROUP", "CREATE", "s", "g", "$")
    park(admin, plain, 1, "XREAD", "BLOCK", "0", "STREAMS", "s", "$")
    park(admin, grouped, 2, "XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">")
    admin.call("DEL", "s")
    assert grouped.read() == ("-", b"UNBLOCKED the stream key no longer exists")
    wait_blocked(admin, 1)
    admin.call("XADD", "s", "5-1", "x", "y")
    assert entries(plain.read()) == [(b"s", [b"5-1"])]


def test_destroyed_group_gives_nogroup(raw):
    admin, reader = raw(), raw()
    admin.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
    park(admin, reader, 1, "XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">")
    admin.call("XGROUP", "DESTROY", "s", "g")
    assert reader.read() == ("-", b"NOGROUP the consumer group this client was blocked on no "
                                  b"longer exists")


def test_client_unblock_and_multi(raw):
    admin, reader = raw(), raw()
    reader_id = reader.call("CLIENT", "ID")[1]
    park(admin, reader, 1, "XREAD", "BLOCK", "0", "STREAMS", "s", "$")
    assert admin.call("CLIENT", "UNBLOCK", reader_id) == (":", b"1")
    assert reader.read() == NIL_ARRAY
    reader.call("MULTI")
    reader.call("XREAD", "BLOCK", "0", "STREAMS", "s", "$")
    assert reader.call("EXEC") == ("*", [NIL_ARRAY])  # never blocks inside MULTI


def test_rename_into_a_waited_key_serves(raw):
    admin, reader = raw(), raw()
    park(admin, reader, 1, "XREAD", "BLOCK", "0", "STREAMS", "dst", "0")
    admin.call("XADD", "src", "1-1", "a", "b")
    admin.call("RENAME", "src", "dst")
    assert entries(reader.read()) == [(b"dst", [b"1-1"])]


def test_blocked_xread_on_several_streams(raw):
    admin, reader = raw(), raw()
    park(admin, reader, 1, "XREAD", "COUNT", "5", "BLOCK", "0", "STREAMS", "a", "b", "$", "$")
    admin.call("XADD", "b", "7-1", "k", "v")
    assert entries(reader.read()) == [(b"b", [b"7-1"])]
