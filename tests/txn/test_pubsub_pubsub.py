"""Pub/sub in RESP2 subscriber mode and RESP3 pushes, introspection, output limits."""
from __future__ import annotations

import socket
import time

import pytest
import redis

from servers import REDIS_SERVER, distcache_server


def next_message(pubsub, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = pubsub.get_message(timeout=0.1)
        if msg is not None:
            return msg
    raise AssertionError("no message in time")


@pytest.fixture
def r(shared_server):
    client = redis.Redis(port=shared_server.port, socket_timeout=10)
    yield client
    client.close()


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


def test_resp2_subscriber_mode_restrictions(shared_server):
    c = redis.Redis(port=shared_server.port, single_connection_client=True, protocol=2)
    conn = c.connection
    conn.send_command("SUBSCRIBE", "mode")
    assert conn.read_response() == [b"subscribe", b"mode", 1]
    conn.send_command("GET", "x")
    with pytest.raises(redis.ResponseError) as info:
        conn.read_response()
    assert str(info.value) == ("Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / "
                               "PING / QUIT / RESET are allowed in this context")
    conn.send_command("PING")
    assert conn.read_response() == [b"pong", b""]
    conn.send_command("UNSUBSCRIBE")
    assert conn.read_response() == [b"unsubscribe", b"mode", 0]
    conn.send_command("GET", "x")  # back to normal
    assert conn.read_response() is None
    c.close()


def _raw(port: int, *commands: bytes, settle_reply: bytes = b"") -> bytes:
    """Send commands on a raw socket; read until the last reply is complete."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        for cmd in commands:
            parts = cmd.split()
            s.sendall(b"*%d\r\n" % len(parts) +
                      b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in parts))
        s.sendall(b"*2\r\n$4\r\nECHO\r\n$4\r\nDONE\r\n" if not settle_reply else b"")
        s.sendall(b"*1\r\n$5\r\nRESET\r\n")
        data = b""
        while not data.endswith(b"+RESET\r\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


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
    with distcache_server(tmp_path) as srv:
        ours = _raw(srv.port, *transcript)
    theirs = _raw(reference_redis.port, *transcript)
    if transcript[0] == b"HELLO 3":  # HELLO's own reply differs (id, extra field)
        ours, theirs = ours.split(b">3", 1)[1], theirs.split(b">3", 1)[1]
    assert ours == theirs


def test_message_order_when_publishing_to_self_resp3(shared_server):
    out = _raw(shared_server.port, b"HELLO 3", b"SUBSCRIBE self", b"PUBLISH self m",
               b"PING")
    tail = out.split(b"subscribe\r\n$4\r\nself\r\n:1\r\n", 1)[1]
    assert tail.startswith(b">3\r\n$7\r\nmessage\r\n$4\r\nself\r\n$1\r\nm\r\n:1\r\n+PONG\r\n")


def test_reset_unsubscribes(shared_server, r):
    c = redis.Redis(port=shared_server.port, single_connection_client=True, protocol=2)
    conn = c.connection
    conn.send_command("SUBSCRIBE", "resetme")
    conn.read_response()
    conn.send_command("RESET")
    assert conn.read_response() == b"RESET"
    assert r.pubsub_numsub("resetme") == [(b"resetme", 0)]
    assert r.publish("resetme", "x") == 0
    c.close()


def _publish_to_stalled_subscriber(srv, channel: str, max_bytes: int) -> int:
    """Subscribe a socket that never reads; publish 64 kB messages until the server
    drops it. Returns the bytes published."""
    r = redis.Redis(port=srv.port)
    sub = socket.socket()
    sub.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sub.connect(("127.0.0.1", srv.port))
    sub.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%s\r\n" % (len(channel),
                                                                  channel.encode()))
    deadline = time.monotonic() + 10
    while r.pubsub_numsub(channel)[0][1] != 1:
        assert time.monotonic() < deadline
    payload = b"x" * 65536
    sent = 0
    # the kernel's socket buffers fill first, then the server's
    while r.pubsub_numsub(channel)[0][1] == 1:
        assert time.monotonic() < deadline and sent < max_bytes, "not disconnected"
        r.publish(channel, payload)
        sent += len(payload)
    assert r.info("stats")["client_output_buffer_limit_disconnections"] == 1
    assert r.publish(channel, "x") == 0
    sub.close()
    r.close()
    return sent


def test_slow_subscriber_disconnected_past_hard_limit(tmp_path):
    with distcache_server(tmp_path, "--client-output-buffer-limit",
                          "pubsub 1mb 512kb 60") as srv:
        _publish_to_stalled_subscriber(srv, "slow", 400 * 2**20)
        rss = redis.Redis(port=srv.port).info("memory")["used_memory_rss"]
        assert rss < 200 * 2**20


def test_soft_limit_over_time(tmp_path):
    with distcache_server(tmp_path, "--client-output-buffer-limit",
                          "pubsub 64mb 256kb 0") as srv:
        sent = _publish_to_stalled_subscriber(srv, "soft", 200 * 2**20)
        assert sent < 64 * 2**20  # well before the hard limit


def test_config_set_output_limit(shared_server, r):
    old = r.config_get("client-output-buffer-limit")["client-output-buffer-limit"]
    try:
        assert r.config_set("client-output-buffer-limit", "pubsub 2mb 1mb 30")
        got = r.config_get("client-output-buffer-limit")["client-output-buffer-limit"]
        assert "pubsub 2097152 1048576 30" in got or "pubsub 2mb 1mb 30" in got
    finally:
        r.config_set("client-output-buffer-limit", old)
