"""Hostile input, part C: the newer surfaces (streams at their limits, DUMP/RESTORE
payloads, replication commands from ordinary clients, SORT/GEO/BITFIELD/LCS).

Each test is a request that used to break the server (an unparsable reply, a
failing snapshot, a traceback) or that must stay bounded; where Redis's reply is
the spec, it is compared with a real redis-server 7.0.15.
"""
from __future__ import annotations

import redis

from servers import same_reply

I64_MAX = (1 << 63) - 1


def _plain(client: redis.Redis) -> redis.Redis:
    """A client on the same server that returns replies as sent (no redis-py parsing),
    so a reply no client can parse fails the test rather than a callback."""
    plain = redis.Redis(port=client.connection_pool.connection_kwargs["port"], socket_timeout=10)
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
