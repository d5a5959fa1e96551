"""Sharded pub/sub (SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH, PUBSUB SHARD*): RESP2 and
RESP3 through redis-py, exact wire replies against a real redis-server, subscriber
introspection, disconnects and the idle timeout. (RESP2 subscriber mode, RESET and
the output buffer limit on smessage deliveries are tested with the plain channels'
ones, in tests/txn/test_pubsub_pubsub.py.)"""
from __future__ import annotations

import socket

import pytest
import redis

from pubsub_helpers import assert_wire_matches, next_message
from servers import REDIS_SERVER, distcache_server, wait_until


@pytest.mark.parametrize("protocol", [2, 3])
def test_ssubscribe_spublish_sunsubscribe(shared_server, r, protocol):
    sub = redis.Redis(port=shared_server.port, protocol=protocol)
    p = sub.pubsub()
    a, b = f"orders-{protocol}", f"stock-{protocol}"
    p.ssubscribe(a, b)
    assert next_message(p) == {"type": "ssubscribe", "pattern": None, "channel": a.encode(),
                               "data": 1}
    assert next_message(p)["data"] == 2
    assert r.spublish(a, "hello") == 1
    assert next_message(p) == {"type": "smessage", "pattern": None, "channel": a.encode(),
                               "data": b"hello"}
    # A namespace of its own: PUBLISH does not reach shard subscribers, nor SPUBLISH
    # plain or pattern subscribers.
    assert r.publish(a, "plain") == 0
    other = redis.Redis(port=shared_server.port).pubsub()
    other.subscribe(b)
    other.psubscribe(f"*-{protocol}")
    wait_until(lambda: r.pubsub_numsub(b)[0][1] == 1, message="plain subscription")
    assert r.spublish(b, "shard") == 1
    assert next_message(p)["data"] == b"shard"
    p.sunsubscribe(a)
    assert next_message(p) == {"type": "sunsubscribe", "pattern": None,
                               "channel": a.encode(), "data": 1}
    assert r.spublish(a, "late") == 0
    p.sunsubscribe()
    assert next_message(p)["type"] == "sunsubscribe"
    assert r.pubsub_shardnumsub(a, b) == [(a.encode(), 0), (b.encode(), 0)]
    for client in (p, other, sub):
        client.close()


def test_shard_introspection(shared_server, r):
    subs = [redis.Redis(port=shared_server.port).pubsub() for _ in range(2)]
    subs[0].ssubscribe("intro:a", "intro:b")
    subs[1].ssubscribe("intro:a")
    wait_until(lambda: r.pubsub_shardnumsub("intro:a")[0][1] == 2, message="subscriptions")
    assert sorted(r.pubsub_shardchannels("intro:*")) == [b"intro:a", b"intro:b"]
    assert r.pubsub_shardchannels("nomatch*") == []
    assert r.pubsub_shardnumsub("intro:a", "intro:b", "intro:none") == [
        (b"intro:a", 2), (b"intro:b", 1), (b"intro:none", 0)]
    assert r.pubsub_channels("intro:*") == []  # plain channels are another namespace
    assert r.pubsub_numsub("intro:a") == [(b"intro:a", 0)]
    assert r.info("stats")["pubsubshard_channels"] >= 2
    assert r.info("clients")["pubsub_clients"] >= 2
    listed = r.execute_command("CLIENT", "LIST", "TYPE", "pubsub")
    lines = [line for line in listed.decode().splitlines() if " ssub=2 " in line]
    assert len(lines) == 1 and " flags=P " in lines[0] and " sub=0 psub=0 " in lines[0]
    assert r.spublish("intro:a", "m") == 2
    for p in subs:
        p.close()  # a disconnect drops the shard subscriptions
    wait_until(lambda: r.pubsub_shardnumsub("intro:a", "intro:b") ==
               [(b"intro:a", 0), (b"intro:b", 0)], message="unsubscribed on disconnect")
    assert r.pubsub_shardchannels("intro:*") == []


# -- exact wire replies against redis-server ---------------------------------------------

TRANSCRIPTS = [
    # Counts in shard confirmations are shard channels only; plain ones are
    # channels plus patterns; subscriber mode lasts while any kind is left.
    [b"SSUBSCRIBE a b", b"SUBSCRIBE c", b"SSUBSCRIBE a", b"PSUBSCRIBE p*", b"SUNSUBSCRIBE a",
     b"SUNSUBSCRIBE zz", b"GET x", b"PING", b"SUNSUBSCRIBE b", b"SUNSUBSCRIBE",
     b"UNSUBSCRIBE", b"GET x", b"PUNSUBSCRIBE", b"GET x"],
    [b"SUBSCRIBE c", b"SSUBSCRIBE a", b"UNSUBSCRIBE c", b"GET x", b"SUNSUBSCRIBE a",
     b"GET x"],
    [b"SUNSUBSCRIBE", b"SUNSUBSCRIBE nope", b"SSUBSCRIBE", b"SPUBLISH", b"SPUBLISH a",
     b"SSUBSCRIBE d d", b"SPUBLISH d self", b"PING", b"PING hi"],
    [b"HELLO 3", b"SSUBSCRIBE a b", b"SPUBLISH a hi", b"PUBLISH a hi", b"SUBSCRIBE a",
     b"PSUBSCRIBE *", b"SPUBLISH a x", b"GET nokey", b"SUNSUBSCRIBE b", b"SUNSUBSCRIBE",
     b"SUNSUBSCRIBE", b"UNSUBSCRIBE", b"PUNSUBSCRIBE"],
    [b"MULTI", b"SSUBSCRIBE x", b"SUNSUBSCRIBE x", b"SPUBLISH x y", b"EXEC", b"GET x"],
    [b"PUBSUB SHARDNUMSUB", b"PUBSUB SHARDNUMSUB wire1 wire1", b"PUBSUB SHARDCHANNELS",
     b"PUBSUB SHARDCHANNELS wire*", b"PUBSUB SHARDCHANNELS a b", b"PUBSUB shardchannels",
     b"COMMAND GETKEYS SSUBSCRIBE a", b"COMMAND GETKEYS SPUBLISH a b"],
]


@pytest.mark.skipif(not REDIS_SERVER, reason="redis-server not installed")
@pytest.mark.parametrize("transcript", TRANSCRIPTS, ids=lambda t: t[0].decode())
def test_wire_replies_match_redis(tmp_path, reference_redis, transcript):
    assert_wire_matches(tmp_path, reference_redis.port, transcript)


@pytest.mark.skipif(not REDIS_SERVER, reason="redis-server not installed")
def test_command_info_matches_redis(shared_server, reference_redis):
    names = ["ssubscribe", "sunsubscribe", "spublish", "pubsub|shardchannels",
             "pubsub|shardnumsub"]
    rows = []
    for port in (shared_server.port, reference_redis.port):
        client = redis.Redis(port=port, protocol=3)
        client.response_callbacks.clear()
        rows.append(client.execute_command("COMMAND", "INFO", *names))
        client.close()
    assert rows[0] == rows[1]


def test_idle_timeout_spares_shard_subscribers(tmp_path):
    """As in Redis, ``timeout`` closes idle clients but not subscribers of any kind."""
    with distcache_server(tmp_path, "--timeout", "1") as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as subscriber, \
                socket.create_connection(("127.0.0.1", srv.port), timeout=10) as idle:
            subscriber.sendall(b"*2\r\n$10\r\nSSUBSCRIBE\r\n$4\r\nkept\r\n")
            assert subscriber.recv(64) == b"*3\r\n$10\r\nssubscribe\r\n$4\r\nkept\r\n:1\r\n"
            idle.sendall(b"*1\r\n$4\r\nPING\r\n")
            assert idle.recv(64) == b"+PONG\r\n"
            assert idle.recv(64) == b""  # closed by the server after a second
            r = redis.Redis(port=srv.port)
            assert r.spublish("kept", "still here") == 1
            assert subscriber.recv(64) == b"*3\r\n$8\r\nsmessage\r\n$4\r\nkept\r\n" \
                                          b"$10\r\nstill here\r\n"
            r.close()
