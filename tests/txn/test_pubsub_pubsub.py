"""Pub/sub in RESP2 subscriber mode and RESP3 pushes, introspection, output limits."""
from __future__ import annotations

import socket
import time

import pytest
import redis

from pubsub_helpers import assert_wire_matches, next_message, raw_transcript
from servers import REDIS_SERVER, distcache_server


@pytest.mark.parametrize("protocol", [2, 3])
def test_subscribe_publish_and_patterns(shared_server, protocol):
    sub = redis.Redis(port=shared_server.port, protocol=protocol)
    pub = redis.Redis(port=shared_server.port)
    p = sub.pubsub()
    ch = f"news-{protocol}"
    p.subscribe(ch, f"other-{protocol}")
    assert next_message(p) == {"type": "subscribe", "pattern": None, "channel": ch.encode(),
                               "data": 1}
    assert next_message(p)["data"] == 2
    p.psubscribe(f"ne*-{protocol}")
    assert next_message(p) == {"type": "psubscribe", "pattern": None,
                               "channel": f"ne*-{protocol}".encode(), "data": 3}
    assert pub.publish(ch, "hello") == 2  # channel + pattern
    got = [next_message(p), next_message(p)]
    assert {"type": "message", "pattern": None, "channel": ch.encode(), "data": b"hello"} in got
    assert {"type": "pmessage", "pattern": f"ne*-{protocol}".encode(), "channel": ch.encode(),
            "data": b"hello"} in got
    assert pub.publish(f"nobody-{protocol}", "x") == 0
    p.unsubscribe()
    kinds = sorted((m["type"], m["data"]) for m in (next_message(p), next_message(p)))
    assert kinds == [("unsubscribe", 1), ("unsubscribe", 2)]
    p.punsubscribe()
    assert next_message(p)["type"] == "punsubscribe"
    assert pub.publish(ch, "late") == 0
    p.close()
    sub.close()


def test_pattern_star_never_matches_the_empty_channel(shared_server):
    # Redis's matcher: "*" matches any non-empty name; only KEYS and SCAN take
    # "*" as "everything".
    sub = redis.Redis(port=shared_server.port).pubsub()
    pub = redis.Redis(port=shared_server.port)
    sub.psubscribe("*")
    assert next_message(sub)["type"] == "psubscribe"
    assert pub.publish("", "nobody") == 0
    assert pub.publish("named", "one") == 1
    assert next_message(sub)["channel"] == b"named"
    sub.close()


def test_pubsub_introspection(shared_server, r):
    subs = [redis.Redis(port=shared_server.port).pubsub() for _ in range(3)]
    subs[0].subscribe("intro:a", "intro:b")
    subs[1].subscribe("intro:a")
    subs[2].psubscribe("intro:*", "other:*")
    subs[1].psubscribe("intro:*")
    for p in subs:
        while p.get_message(timeout=0.2) is not None:
            pass
    assert sorted(ch for ch in r.pubsub_channels("intro:*")) == [b"intro:a", b"intro:b"]
    assert set(r.pubsub_channels()) >= {b"intro:a", b"intro:b"}
    assert r.pubsub_numsub("intro:a", "intro:b", "intro:none") == [
        (b"intro:a", 2), (b"intro:b", 1), (b"intro:none", 0)]
    assert r.pubsub_numpat() >= 2  # unique patterns
    assert r.publish("intro:a", "m") == 4  # 2 direct + 2 pattern subscribers
    info = r.info("stats")
    assert info["pubsub_channels"] >= 2 and info["pubsub_patterns"] >= 2
    for p in subs:
        p.close()
    deadline = time.monotonic() + 5
    while r.pubsub_numsub("intro:a")[0][1] != 0:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert r.pubsub_channels("intro:*") == []


@pytest.mark.parametrize("verb,unverb", [("SUBSCRIBE", "UNSUBSCRIBE"),
                                         ("SSUBSCRIBE", "SUNSUBSCRIBE")])
def test_resp2_subscriber_mode_restrictions(shared_server, verb, unverb):
    c = redis.Redis(port=shared_server.port, single_connection_client=True, protocol=2)
    conn = c.connection
    conn.send_command(verb, "mode")
    assert conn.read_response() == [verb.lower().encode(), b"mode", 1]
    conn.send_command("GET", "x")
    with pytest.raises(redis.ResponseError) as info:
        conn.read_response()
    assert str(info.value) == ("Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / "
                               "PING / QUIT / RESET are allowed in this context")
    conn.send_command("PING")
    assert conn.read_response() == [b"pong", b""]
    conn.send_command(unverb)
    assert conn.read_response() == [unverb.lower().encode(), b"mode", 0]
    conn.send_command("GET", "x")  # back to normal
    assert conn.read_response() is None
    c.close()


TRANSCRIPTS = [
    [b"SUBSCRIBE a b", b"PSUBSCRIBE p*", b"UNSUBSCRIBE a", b"UNSUBSCRIBE zz", b"PUNSUBSCRIBE",
     b"UNSUBSCRIBE", b"UNSUBSCRIBE", b"PUNSUBSCRIBE"],
    [b"SUBSCRIBE a a", b"PSUBSCRIBE x x", b"PUNSUBSCRIBE x y"],
    [b"HELLO 3", b"SUBSCRIBE a", b"PUBLISH a hi", b"PSUBSCRIBE *", b"PUBLISH a hi",
     b"GET nokey", b"UNSUBSCRIBE a", b"PUNSUBSCRIBE", b"UNSUBSCRIBE"],
    [b"PUBSUB NUMSUB", b"PUBSUB NUMPAT", b"PUBSUB CHANNELS nomatch*", b"PUBSUB HELP",
     b"PUBSUB FOO", b"PUBSUB CHANNELS a b", b"PUBLISH", b"SUBSCRIBE", b"PUBSUB NUMPAT x"],
    [b"MULTI", b"SUBSCRIBE x", b"EXEC"],
]


@pytest.mark.skipif(not REDIS_SERVER, reason="redis-server not installed")
@pytest.mark.parametrize("transcript", TRANSCRIPTS, ids=lambda t: t[0].decode())
def test_wire_replies_match_redis(tmp_path, reference_redis, transcript):
    assert_wire_matches(tmp_path, reference_redis.port, transcript)


def test_message_order_when_publishing_to_self_resp3(shared_server):
    out = raw_transcript(shared_server.port, b"HELLO 3", b"SUBSCRIBE self", b"PUBLISH self m",
               b"PING")
    tail = out.split(b"subscribe\r\n$4\r\nself\r\n:1\r\n", 1)[1]
    assert tail.startswith(b">3\r\n$7\r\nmessage\r\n$4\r\nself\r\n$1\r\nm\r\n:1\r\n+PONG\r\n")


#: (subscribe command, publish, subscriber count) for plain and shard channels.
KINDS = {"channel": ("SUBSCRIBE", "publish", "pubsub_numsub"),
         "shard": ("SSUBSCRIBE", "spublish", "pubsub_shardnumsub")}


@pytest.mark.parametrize("kind", list(KINDS))
def test_reset_unsubscribes(shared_server, r, kind):
    verb, publish, numsub = KINDS[kind]
    c = redis.Redis(port=shared_server.port, single_connection_client=True, protocol=2)
    conn = c.connection
    conn.send_command(verb, "resetme")
    conn.read_response()
    conn.send_command("RESET")
    assert conn.read_response() == b"RESET"
    assert getattr(r, numsub)("resetme") == [(b"resetme", 0)]
    assert getattr(r, publish)("resetme", "x") == 0
    conn.send_command("GET", "x")  # no longer in subscriber mode
    assert conn.read_response() is None
    c.close()


def _publish_to_stalled_subscriber(srv, channel: str, max_bytes: int,
                                   kind: str = "channel") -> int:
    """Subscribe a socket that never reads; publish 64 kB messages until the server
    drops it. Returns the bytes published."""
    verb, publish_name, numsub_name = KINDS[kind]
    r = redis.Redis(port=srv.port)
    publish, numsub = getattr(r, publish_name), getattr(r, numsub_name)
    sub = socket.socket()
    sub.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sub.connect(("127.0.0.1", srv.port))
    sub.sendall(b"*2\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
        len(verb), verb.encode(), len(channel), channel.encode()))
    deadline = time.monotonic() + 10
    while numsub(channel)[0][1] != 1:
        assert time.monotonic() < deadline
    payload = b"x" * 65536
    sent = 0
    # the kernel's socket buffers fill first, then the server's
    while numsub(channel)[0][1] == 1:
        assert time.monotonic() < deadline and sent < max_bytes, "not disconnected"
        publish(channel, payload)
        sent += len(payload)
    assert r.info("stats")["client_output_buffer_limit_disconnections"] == 1
    assert publish(channel, "x") == 0
    sub.close()
    r.close()
    return sent


@pytest.mark.parametrize("kind", list(KINDS))
def test_slow_subscriber_disconnected_past_hard_limit(tmp_path, kind):
    with distcache_server(tmp_path, "--client-output-buffer-limit",
                          "pubsub 1mb 512kb 60") as srv:
        _publish_to_stalled_subscriber(srv, "slow", 400 * 2**20, kind)
        rss = redis.Redis(port=srv.port).info("memory")["used_memory_rss"]
        assert rss < 200 * 2**20


@pytest.mark.parametrize("kind", list(KINDS))
def test_soft_limit_over_time(tmp_path, kind):
    with distcache_server(tmp_path, "--client-output-buffer-limit",
                          "pubsub 64mb 256kb 0") as srv:
        sent = _publish_to_stalled_subscriber(srv, "soft", 200 * 2**20, kind)
        assert sent < 64 * 2**20  # well before the hard limit


def test_config_set_output_limit(shared_server, r):
    old = r.config_get("client-output-buffer-limit")["client-output-buffer-limit"]
    try:
        assert r.config_set("client-output-buffer-limit", "pubsub 2mb 1mb 30")
        got = r.config_get("client-output-buffer-limit")["client-output-buffer-limit"]
        assert "pubsub 2097152 1048576 30" in got or "pubsub 2mb 1mb 30" in got
    finally:
        r.config_set("client-output-buffer-limit", old)
