"""notify-keyspace-events from the config file, flags and CONFIG SET; RESP3
subscribers; expiry (lazy and active) and eviction events."""
from __future__ import annotations

import socket

import pytest
import redis

from events_helpers import MARKER, EventSide, events_of
from servers import distcache_server, wait_until


def encode(args) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


FORMS = ["KEA", "Ex", "$lshzxetdgK", "Kmn", "AKEmn", "gK$", "", "AE", "lz", "KEt"]


@pytest.mark.parametrize("classes", FORMS)
def test_config_get_shows_redis_normalised_form(pair, classes):
    shown = []
    for side in pair.sides:
        side.client.config_set("notify-keyspace-events", classes)
        shown.append(side.client.config_get("notify-keyspace-events"))
    pair.config("KEAn")
    assert shown[0] == shown[1]


def test_invalid_class_is_refused_with_redis_text(pair):
    errors = []
    for side in pair.sides:
        with pytest.raises(redis.ResponseError) as info:
            side.client.config_set("notify-keyspace-events", "KEQ")
        errors.append(str(info.value))
    assert errors[0] == errors[1]
    assert pair.sides[0].client.config_get("notify-keyspace-events") == \
        {"notify-keyspace-events": "AKE"}  # as Redis: with A, n is not shown


def test_config_file_and_flag(tmp_path):
    conf = tmp_path / "distcache.conf"
    conf.write_text("notify-keyspace-events Elg\n")
    with distcache_server(tmp_path, "--config", str(conf)) as srv:
        client = redis.Redis(port=srv.port)
        assert client.config_get("notify-keyspace-events") == {"notify-keyspace-events": "glE"}
    with distcache_server(tmp_path, "--notify-keyspace-events", "Kx") as srv:
        client = redis.Redis(port=srv.port)
        assert client.config_get("notify-keyspace-events") == {"notify-keyspace-events": "xK"}


def test_classes_filter_events(pair):
    pair.config("El")  # lists only, keyevent channel only
    try:
        msgs = pair.same_events(("SET", "k", "v"), ("LPUSH", "l", "a"), ("DEL", "l"))
        assert msgs == [(b"__keyevent@0__:lpush", b"l")]
        pair.config("Ks")  # no list class: nothing
        assert pair.same_events(("LPUSH", "l", "a")) == []
    finally:
        pair.config("KEAn")


def _resp3_subscriber_bytes(port: int, client) -> bytes:
    """What a RESP3 subscriber to every keyspace channel reads while ``client``
    (another connection) writes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for cmd in ([b"HELLO", b"3"], [b"PSUBSCRIBE", b"__key*__:*"]):
            sock.sendall(encode(cmd))
        data = b""
        while b"psubscribe" not in data or not data.endswith(b":1\r\n"):
            data += sock.recv(65536)
        client.set("k", "v")
        client.lpush("l", "a")
        client.delete("k", "l")
        client.publish(MARKER, "resp3")
        data = b""
        while b"__end_of_case__" not in data or not data.endswith(b"resp3\r\n"):
            data += sock.recv(65536)
        return data


def test_resp3_subscribers_get_the_same_bytes(pair):
    wires = []
    for side in pair.sides:
        side.client.flushall()
        port = side.client.connection_pool.connection_kwargs["port"]
        wires.append(_resp3_subscriber_bytes(port, side.client))
    assert wires[0] == wires[1]
    assert wires[0].startswith(b">4\r\n$8\r\npmessage") and b"__keyevent@0__:lpush" in wires[0]


def test_active_expiry_sends_expired(pair):
    seqs = []
    for side in pair.sides:
        side.client.flushall()
        side.run([])
        side.client.set("k", "v", px=30)
        wait_until(lambda: side.client.dbsize() == 0)  # DBSIZE never expires: the cycle did
        seqs.append(events_of(side.run([])[1]))
    assert seqs[0] == seqs[1] == [b"new", b"set", b"expire", b"expired"]


def test_eviction_sends_evicted(tmp_path):
    with distcache_server(tmp_path, "--notify-keyspace-events", "Ee") as srv:
        side = EventSide(srv.port)
        client = side.client
        client.config_set("maxmemory-policy", "allkeys-random")
        for i in range(200):
            client.set(f"k{i}", "x" * 1000)
        client.config_set("maxmemory", "1")
        try:
            client.set("last", "x")
        except redis.ResponseError:
            pass  # nothing left to evict may still leave it over the limit
        _, msgs = side.run([])
        evicted = [data for channel, data in msgs if channel == b"__keyevent@0__:evicted"]
        assert evicted and all(client.exists(key) == 0 for key in evicted)
        assert int(client.info("stats")["evicted_keys"]) == len(evicted)
        client.config_set("maxmemory", "0")
        side.close()
