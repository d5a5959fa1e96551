"""Hostile input, part C: the newer surfaces (streams at their limits, DUMP/RESTORE
payloads, replication commands from ordinary clients, SORT/GEO/BITFIELD/LCS).

Each test is a request that used to break the server (an unparsable reply, a
failing snapshot, a traceback) or that must stay bounded; where Redis's reply is
the spec, it is compared with a real redis-server 7.0.15.
"""
from __future__ import annotations

import socket
import time

import redis

from servers import same_reply

I64_MAX = (1 << 63) - 1


def _plain(client: redis.Redis) -> redis.Redis:
    """A client on the same server that returns replies as sent (no redis-py parsing),
    so a reply no client can parse fails the test rather than a callback."""
    # RESP3 on every redis-py: 6 (Python 3.9's, so PyPy's) speaks RESP2 by default,
    # where the XINFO maps below are flat lists.
    plain = redis.Redis(port=client.connection_pool.connection_kwargs["port"], socket_timeout=10,
                        protocol=3)
    plain.response_callbacks.clear()
    return plain


# -- streams: 64-bit counters wrap as Redis's long longs do ----------------------------

def test_stream_counters_past_int64_wrap_like_redis_and_snapshots_still_save(r, reference_redis):
    """XSETID ENTRIESADDED / XGROUP ENTRIESREAD / XCLAIM RETRYCOUNT at 2**63-1 and one
    more step: distcache sent ``:9223372036854775808`` (no client parses it) and every
    later SAVE/BGSAVE failed with struct.error. Redis wraps to -2**63."""
    ref = _plain(redis.Redis(port=reference_redis.port))
    ref.flushall()
    r = _plain(r)
    clients = (r, ref)
    for cmd in (("XADD", "s", "1-1", "f", "v"),
                ("XSETID", "s", "1-1", "ENTRIESADDED", I64_MAX),
                ("XGROUP", "CREATE", "s", "g", "0", "ENTRIESREAD", I64_MAX),
                ("XADD", "s", "2-1", "f", "v"),
                ("XREADGROUP", "GROUP", "g", "c", "COUNT", 1, "STREAMS", "s", ">"),
                ("XCLAIM", "s", "g", "c", 0, "1-1", "RETRYCOUNT", I64_MAX, "JUSTID"),
                ("XCLAIM", "s", "g", "c", 0, "1-1", "JUSTID"),
                ("XCLAIM", "s", "g", "c", 0, "1-1", "JUSTID", "RETRYCOUNT", I64_MAX),
                ("XCLAIM", "s", "g", "c", 0, "1-1", "TIME", 1)):  # + 1 delivery
        same_reply(clients, *cmd)
    info = same_reply(clients, "XINFO", "STREAM", "s")
    assert info[b"entries-added"] == -(1 << 63)
    groups = same_reply(clients, "XINFO", "GROUPS", "s")
    assert groups[0][b"entries-read"] == -(1 << 63)
    pending = [c.execute_command("XPENDING", "s", "g", "-", "+", 10) for c in clients]
    assert pending[0][0][3] == pending[1][0][3] == -(1 << 63)  # the delivery count
    full = [c.execute_command("XINFO", "STREAM", "s", "FULL") for c in clients]
    for reply in full:  # seen and delivery times differ between the servers
        del reply[b"groups"][0][b"pending"], reply[b"groups"][0][b"consumers"]
    assert full[0] == full[1]
    assert r.execute_command("SAVE") == b"OK"
    for source, target in ((r, ref), (ref, r)):  # as Redis writes them: unsigned
        assert target.execute_command("RESTORE", "s2", 0, source.execute_command(
            "DUMP", "s"), "REPLACE") == b"OK"
    same_reply(clients, "XINFO", "GROUPS", "s2")


# -- strings: SETRANGE far past the end --------------------------------------------------

def test_setrange_pads_and_patches_like_redis(r, reference_redis):
    """SETRANGE builds its result in one copy now (it padded, sliced and concatenated:
    four copies of up to 512 MB, seconds of event loop at the largest offsets); the
    bytes are Redis's at every edge."""
    ref = redis.Redis(port=reference_redis.port, socket_timeout=10)
    ref.flushall()
    clients = (r, ref)
    for args in (("s", 0, ""), ("s", 5, ""), ("s", 3, "ab"), ("s", 0, "xyz"), ("s", 4, "Q"),
                 ("s", 10, "tail"), ("s", 12, "over-the-end"), ("t", 1 << 20, "x"),
                 ("t", 7, "mid")):
        same_reply(clients, "SETRANGE", *args)
        same_reply(clients, "GET", args[0])
    same_reply(clients, "SETRANGE", "u", 512 << 20, "x")  # past proto-max-bulk-len


# -- client tracking: many BCAST prefixes -------------------------------------------------

def test_many_bcast_prefixes_cost_per_write_and_per_command_stay_small(shared_server):
    """20,000 prefixes added 1,000 at a time: each CLIENT TRACKING compared every new
    prefix with every one the client had (minutes at 50,000; redis-server 7.0 takes
    minutes too), and every write tried every prefix (18 ms a write at 50,000). Now
    a bisection per prefix and a dict lookup per distinct prefix length."""
    client = socket.create_connection(("127.0.0.1", shared_server.port), timeout=60)
    writer = redis.Redis(port=shared_server.port, socket_timeout=60)
    received = bytearray()

    def read_until(text: bytes) -> None:
        while text not in received:
            received.extend(client.recv(65536))

    client.sendall(b"HELLO 3\r\n")
    read_until(b"modules")
    start = time.perf_counter()
    for batch in range(0, 20_000, 1000):
        args = [b"CLIENT", b"TRACKING", b"on", b"BCAST"]
        for i in range(batch, batch + 1000):
            args += [b"PREFIX", b"p%06d:" % i]
        client.sendall(b"*%d\r\n" % len(args)
                       + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
        read_until(b"+OK\r\n")
        del received[:]
    assert time.perf_counter() - start < 15  # about 1 s here; the old code: minutes
    start = time.perf_counter()
    pipe = writer.pipeline(transaction=False)
    for i in range(3000):
        pipe.set("other:%d" % i, 1)
    pipe.execute()
    assert time.perf_counter() - start < 5  # about 0.3 s here; the old code: 20 s
    writer.set("p012345:key", 1)
    read_until(b"$11\r\np012345:key\r\n")  # the invalidation push
    assert b"other:" not in received
    client.close()
    writer.close()


def test_overlapping_prefixes_are_named_as_redis_names_them(r, reference_redis):
    ref = redis.Redis(port=reference_redis.port, socket_timeout=10)
    for prefixes, more in ((["a", "b", "ab"], []), (["ab", "b", "a"], []),
                           (["x", "y"], ["z", "xy"]), (["x", "y"], ["q", "r", "q"]),
                           (["foo"], ["f"]), (["abc", "abd"], ["b", "ab"])):
        replies = []
        for client in (r, ref):
            conn = client.connection_pool.get_connection()
            try:
                for group in (prefixes, more):
                    if group:
                        args = [x for p in group for x in ("PREFIX", p)]
                        conn.send_command("CLIENT", "TRACKING", "on", "BCAST", *args)
                        try:
                            replies.append(conn.read_response())
                        except redis.ResponseError as exc:
                            replies.append(str(exc))
                conn.send_command("CLIENT", "TRACKING", "off")
                conn.read_response()
            finally:
                client.connection_pool.release(conn)
        half = len(replies) // 2
        assert replies[:half] == replies[half:], prefixes
