"""What the append-only log is told for streams: ids chosen by the server, exact
trims, and group changes in the idempotent forms Redis propagates."""
from __future__ import annotations

import time

from test_types_propagation import embedded, logged, wait_for  # noqa: F401
from types_resp import RawClient


def _claim(key, group, consumer, entry_id, count, last):
    return [b"XCLAIM", key, group, consumer, b"0", entry_id, b"TIME", b"T", b"RETRYCOUNT",
            count, b"FORCE", b"JUSTID", b"LASTID", last]


def _timeless(log):
    return [cmd[:7] + [b"T"] + cmd[8:] if cmd[0] == b"XCLAIM" else cmd for cmd in log]


def test_xadd_logs_the_id_it_chose_and_the_exact_trim(logged):
    client, log, _ = logged
    got = client.call("XADD", "s", "*", "a", "1")[1]
    assert log == [[b"XADD", b"s", got, b"a", b"1"]]
    log.clear()
    client.call("XADD", "t", "5-*", "a", "2")
    assert log == [[b"XADD", b"t", b"5-0", b"a", b"2"]]
    log.clear()
    client.call("XADD", "s", "MAXLEN", "~", "1", "LIMIT", "10", "99999999999999-1", "b", "2")
    assert log == [[b"XADD", b"s", b"MAXLEN", b"=", b"2", b"99999999999999-1", b"b", b"2"]]
    log.clear()
    client.call("XTRIM", "s", "MAXLEN", "1")
    assert log == [[b"XTRIM", b"s", b"MAXLEN", b"=", b"1"]]
    log.clear()
    got = client.call("XADD", "m", "MAXLEN", "~", "5", "*", "a", "3")[1]
    assert log == [[b"XADD", b"m", b"MAXLEN", b"=", b"1", got, b"a", b"3"]]


def test_pipelined_xadds_are_logged_with_their_ids(logged):
    """A run of ``XADD key * ...`` in one read (the run handler) logs each with its
    id; a key with a TTL, a new key and another type break the run, as they must."""
    from types_resp import encode
    client, log, _ = logged
    client.call("XADD", "s", "*", "a", "0")
    client.call("XADD", "ttl", "*", "a", "0")
    client.call("EXPIRE", "ttl", "100")
    client.call("SET", "str", "x")
    log.clear()
    batch = [["XADD", "s", "*", "a", str(i)] for i in range(20)]
    batch[5] = ["XADD", "ttl", "*", "b", "1"]
    batch[9] = ["XADD", "new", "*", "c", "2", "d", "3"]
    batch[12] = ["XADD", "str", "*", "e", "4"]
    client.sock.sendall(b"".join(encode(args) for args in batch))
    replies = [client.read() for _ in batch]
    assert replies[12][0] == "-" and replies[12][1].startswith(b"WRONGTYPE")
    expected = [[args[0].encode(), args[1].encode(), reply[1],
                 *[a.encode() for a in args[3:]]]
                for args, reply in zip(batch, replies) if reply[0] == "$"]
    wait_for(log, len(expected))
    assert log == expected
    ids = [reply[1] for args, reply in zip(batch, replies) if args[1] == "s"]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split(b"-"))))
    assert client.call("XLEN", "s") == (":", b"18")


def test_group_reads_and_claims_are_logged_as_xclaim(logged):
    client, log, _ = logged
    client.call("XADD", "s", "1-1", "a", "b")
    client.call("XADD", "s", "2-1", "a", "b")
    client.call("XGROUP", "CREATE", "s", "g", "$")
    assert log[-1] == [b"XGROUP", b"CREATE", b"s", b"g", b"2-1", b"ENTRIESREAD", b"-1"]
    client.call("XGROUP", "SETID", "s", "g", "0")
    log.clear()
    client.call("XREADGROUP", "GROUP", "g", "c1", "COUNT", "1", "STREAMS", "s", ">")
    assert _timeless(log) == [[b"XGROUP", b"CREATECONSUMER", b"s", b"g", b"c1"],
                              _claim(b"s", b"g", b"c1", b"1-1", b"1", b"1-1")]
    log.clear()
    client.call("XREADGROUP", "GROUP", "g", "c1", "NOACK", "STREAMS", "s", ">")
    assert log == [[b"XGROUP", b"SETID", b"s", b"g", b"2-1", b"ENTRIESREAD", b"2"]]
    log.clear()
    client.call("XCLAIM", "s", "g", "c2", "0", "1-1")
    assert _timeless(log) == [[b"XGROUP", b"CREATECONSUMER", b"s", b"g", b"c2"],
                              _claim(b"s", b"g", b"c2", b"1-1", b"2", b"2-1")]
    log.clear()
    client.call("XAUTOCLAIM", "s", "g", "c1", "0", "0", "JUSTID")
    assert _timeless(log) == [_claim(b"s", b"g", b"c1", b"1-1", b"2", b"2-1")]
    log.clear()
    client.call("XACK", "s", "g", "1-1")
    assert log == [[b"XACK", b"s", b"g", b"1-1"]]


def test_a_served_blocked_group_reader_is_logged(logged):
    client, log, server = logged
    client.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
    reader = RawClient(server.port)
    try:
        reader.send("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">")
        assert wait_blocked_embedded(server)
        log.clear()
        client.call("XADD", "s", "7-1", "k", "v")
        assert reader.read()[0] == "*"
        wait_for(log, 3)
        assert _timeless(log) == [[b"XADD", b"s", b"7-1", b"k", b"v"],
                                  [b"XGROUP", b"CREATECONSUMER", b"s", b"g", b"c"],
                                  _claim(b"s", b"g", b"c", b"7-1", b"1", b"7-1")]
    finally:
        reader.close()


def wait_blocked_embedded(server, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not server.blocked_clients:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_pipelined_xadds_behind_the_clock_count_on_from_the_last_id(logged):
    """The run handler's ids after a future id: that ms, the seq counting on (past
    the small-seq table at 1024), replies and log alike."""
    from types_resp import encode
    client, log, _ = logged
    client.call("XADD", "f", "99999999999999-1020", "a", "0")
    log.clear()
    batch = [["XADD", "f", "*", "a", str(i)] for i in range(8)]
    client.sock.sendall(b"".join(encode(args) for args in batch))
    replies = [client.read() for _ in batch]
    ids = [b"99999999999999-%d" % seq for seq in range(1021, 1029)]
    assert replies == [("$", i) for i in ids]
    wait_for(log, len(ids))
    assert log == [[b"XADD", b"f", i, b"a", b"%d" % n] for n, i in enumerate(ids)]


def test_pipelined_xadds_of_every_shape_get_their_replies(logged):
    """The run handler sees requests before the arity check: short ones, options and
    explicit ids leave it to the general path's replies."""
    from types_resp import encode
    client, log, _ = logged
    batch = [["XADD", "k"], ["XADD", "k", "*"], ["XADD", "k", "MAXLEN", "~", "5", "*", "a", "1"],
             ["XADD", "k", "*", "a", "2"], ["XADD", "k", "MAXLEN"], ["XADD", "k", "*", "a", "3"]]
    client.sock.sendall(b"".join(encode(args) for args in batch))
    replies = [client.read() for _ in batch]
    assert [kind for kind, _ in replies] == ["-", "-", "$", "$", "-", "$"]
    assert replies[0][1] == b"ERR wrong number of arguments for 'xadd' command"
    assert client.call("XLEN", "k") == (":", b"3")


def test_pipelined_xadds_to_keys_in_turn_are_batched_per_key(logged):
    """Runs of XADDs to one key, then another, in one read: each key's ids count on
    from its own last id, entries of any shape read back as sent, logged with ids."""
    from types_resp import encode
    client, log, _ = logged
    client.call("XADD", "p", "*", "f", "0")
    client.call("XADD", "q", "*", "f", "0")
    log.clear()
    values = ["xxx", "12", "y" * 70, "", "-z", "abc"]
    batch = []
    for i in range(60):
        key = "p" if (i // 7) % 2 else "q"
        fields = ["f", values[i % len(values)]] + (["g", "1"] if i % 11 == 0 else [])
        batch.append(["XADD", key, "*", *fields])
    client.sock.sendall(b"".join(encode(args) for args in batch))
    replies = [client.read() for _ in batch]
    assert all(kind == "$" for kind, _ in replies)
    wait_for(log, len(batch))
    assert log == [[b"XADD", args[1].encode(), reply[1], *[a.encode() for a in args[3:]]]
                   for args, reply in zip(batch, replies)]
    for key in ("p", "q"):
        ids = [reply[1] for args, reply in zip(batch, replies) if args[1] == key]
        parsed = [tuple(map(int, i.split(b"-"))) for i in ids]
        assert parsed == sorted(set(parsed))
        sent = [[a.encode() for a in args[3:]] for args in batch if args[1] == key]
        kind, entries = client.call("XRANGE", key, "(" + ids[0].decode(), "+")
        assert kind == "*"
        assert [entry[1][0][1] for entry in entries] == ids[1:]
        assert [entry[1][1][1] for entry in entries] == [[("$", v) for v in fields]
                                                        for fields in sent[1:]]
