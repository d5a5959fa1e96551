"""The client API, against distcache and redis-server, sync and asyncio alike."""
from __future__ import annotations

import dataclasses

import pytest
import redis

from client_helpers import supports_watch

import distcache
from distcache import DecodeError
from distcache.client.base import resolve_servers
from distcache.client.errors import ResponseError


@distcache.register
@dataclasses.dataclass
class Point:
    x: int
    y: float
    tags: tuple = ()


def test_set_get_roundtrip_types(client):
    values = [0, -5, 2 ** 100, 1.5, "text", "42", "", b"\x00\xff", True, False, None,
              [1, [2, (3,)]], {"a": {1, 2}, (1, 2): frozenset({"x"})}, Point(1, 2.5, ("t",))]
    for i, value in enumerate(values):
        assert client.set(f"k{i}", value) is True
        got = client.get(f"k{i}", default="MISSING")
        assert got == value and type(got) is type(value)


def test_get_default_and_keys(client):
    assert client.get("nope") is None
    assert client.get("nope", 7) == 7
    client.set(5, "int key")
    assert client.get("5") == "int key"      # an int key is its decimal text
    client.set(b"bkey", 1)
    assert client.get("bkey") == 1
    for bad in (1.5, None, ("t",), True):
        with pytest.raises(TypeError, match="str, bytes or int"):
            client.get(bad)


def test_unregistered_value_is_a_clear_type_error(client):
    class Nope:
        pass
    with pytest.raises(TypeError, match="register"):
        client.set("k", Nope())


def test_add_replace_delete_exists(client):
    assert client.add("k", 1) is True
    assert client.add("k", 2) is False
    assert client.replace("k", 3) is True
    assert client.replace("missing", 3) is False
    assert client.get("k") == 3
    assert client.set("k", 4, nx=True) is False
    assert client.set("k", 4, xx=True) is True
    assert client.exists("k") is True
    assert client.delete("k") is True
    assert client.delete("k") is False
    assert client.exists("k") is False


def test_ttl_expire_persist_touch(client):
    client.set("k", 1, ttl=100)
    assert 99 < client.ttl("k") <= 100
    assert client.persist("k") is True
    assert client.ttl("k") is None
    assert client.expire("k", 50) is True
    assert 49 < client.ttl("k") <= 50
    assert client.touch("k", 200) is True
    assert 199 < client.ttl("k") <= 200
    assert client.touch("k") is True
    assert client.touch("missing") is False
    assert client.expire("missing", 5) is False
    assert client.ttl("missing") is None
    client.set("short", 1, ttl=0.05)
    remaining = client.ttl("short")
    assert remaining is None or remaining <= 0.05  # None: gone already, on a slow host
    with pytest.raises(ValueError):
        client.set("k", 1, ttl=-1)


def test_incr_decr_interop_with_other_clients(client, backend):
    r = redis.Redis(port=backend.port)
    try:
        assert client.incr("n") == 1
        assert client.incr("n", 10) == 11
        assert client.decr("n", 2) == 9
        client.set("c", 41)
        assert r.get("c") == b"41"          # plain decimal text on the wire
        r.incr("c")
        assert client.get("c") == 42        # an int again after someone INCRs
        client.set("s", "plain text")
        assert r.get("s") == b"plain text"
        r.set("foreign", b"\xff\xfe binary")
        assert client.get("foreign") == b"\xff\xfe binary"
        r.set("utf", "caf\u00e9".encode())
        assert client.get("utf") == "caf\u00e9"
        r.set("bad", b"\xff\xdc\x10q")      # our magic, but malformed
        with pytest.raises(DecodeError):
            client.get("bad")
        client.set("txt", "hello")
        with pytest.raises(ResponseError):
            client.incr("txt")
    finally:
        r.close()


def test_many(client):
    data = {f"k{i}": i for i in range(50)}
    data["list"] = [1, 2]
    assert client.set_many(data) is True
    got = client.get_many(list(data) + ["missing1", "missing2"])
    assert got == data
    assert client.get_many([]) == {}
    assert client.get_many([1, "1"]) == {}
    assert client.set_many({"t1": 1, "t2": 2}, ttl=30) is True
    assert 29 < client.ttl("t2") <= 30
    assert client.delete_many(list(data)[:10] + ["missing"]) == 10
    assert client.delete_many([]) == 0
    assert client.get_many(["k0", "k10"]) == {"k10": 10}


def test_get_or_set(client):
    calls = []

    def compute():
        calls.append(1)
        return {"v": 1}
    assert client.get_or_set("g", compute, ttl=10) == {"v": 1}
    assert client.get_or_set("g", compute, ttl=10) == {"v": 1}
    assert len(calls) == 1
    assert client.ttl("g") > 9


def test_flush_ping_stats_execute(client):
    client.set("a", 1)
    assert client.ping() is True
    stats = client.stats()
    (info,) = stats.values()
    assert "redis_version" in info and isinstance(info["connected_clients"], int)
    assert client.execute("GET", "a") == b"1"
    assert client.execute("PING") == b"PONG"
    assert client.execute("HSET", "h", "f", "v") == 1
    with pytest.raises(ResponseError, match="unknown command"):
        client.execute("NOSUCHCOMMAND")
    assert client.flush() is True
    assert client.exists("a") is False


def test_pipeline(client):
    with client.pipeline() as p:
        p.set("a", 1).incr("a").get("a")
        p.get("missing", "dflt")
        p.execute("PING")
        assert len(p) == 5
        assert p.execute() == [True, 2, 2, "dflt", b"PONG"]
    p = client.pipeline()
    for i in range(300):
        p.set(f"p{i}", i)
    p.get("p299")
    assert p.execute()[-1] == 299
    p = client.pipeline()
    p.set("s", "x").incr("s").get("s")
    with pytest.raises(ResponseError):
        p.execute()
    p.set("s", "x").incr("s").get("s")
    results = p.execute(raise_on_error=False)
    assert results[0] is True and isinstance(results[1], ResponseError) and results[2] == "x"
    with pytest.raises(TypeError):
        client.pipeline().get_many(["a"])


def test_gets_cas(client):
    if not supports_watch(client):
        pytest.skip("this server has no WATCH/MULTI yet")
    client.set("c", 1, ttl=100)
    value, token = client.gets("c")
    assert value == 1 and token
    assert client.cas("c", 2, token) is True
    assert client.get("c") == 2
    assert client.ttl("c") > 90               # ttl=None keeps the TTL
    assert client.cas("c", 3, token) is False  # stale token
    value, token = client.gets("c")
    client.set("c", 99)                        # someone else writes
    assert client.cas("c", 4, token) is False
    assert client.gets("missing") == (None, None)
    assert client.cas("missing", 1, None) is False
    value, token = client.gets("c")
    assert client.cas_delete("c", token) is True
    assert client.exists("c") is False


def test_context_manager_and_legacy_import(backend, flavour):
    from distcache.cache_client import CacheClient
    with CacheClient(backend.address) as c:
        assert c.ping()
    assert repr(c) == f"CacheClient([{backend.address!r}])"


def test_server_resolution(tmp_path, monkeypatch):
    assert [s.address for s in resolve_servers(None, {})] == ["127.0.0.1:2050"]
    env = {"DISTCACHE_SERVERS": "a:1, b:2 weight=3"}
    assert [(s.address, s.weight) for s in resolve_servers(None, env)] == [("a:1", 1),
                                                                          ("b:2", 3)]
    conf = tmp_path / "distcache.conf"
    conf.write_text("# comment\nport 2050\nserver_pool h1:2050 h2:2051 weight=2\n")
    servers = resolve_servers(None, {"DISTCACHE_CONFIG": str(conf)})
    assert [(s.address, s.weight) for s in servers] == [("h1:2050", 1), ("h2:2051", 2)]
    assert [s.address for s in resolve_servers("x:5")] == ["x:5"]
    assert [s.address for s in resolve_servers([("y", 6, 1), "z:7"])] == ["y:6", "z:7"]
    monkeypatch.setenv("DISTCACHE_SERVERS", "env-host:9999")
    assert distcache.CacheClient().servers == ["env-host:9999"]


def test_server_and_client_share_a_config_file(tmp_path):
    from servers import distcache_server, free_port
    port = free_port()
    conf = tmp_path / "shared.conf"
    conf.write_text(f"port {port}\nserver_pool 127.0.0.1:{port}\n")
    with distcache_server(tmp_path, "--config", str(conf), port=port):
        servers = resolve_servers(None, {"DISTCACHE_CONFIG": str(conf)})
        with distcache.CacheClient(servers) as c:
            assert c.servers == [f"127.0.0.1:{port}"] and c.ping()


@pytest.mark.parametrize("parser", ["python", "hiredis"])
def test_reply_parsers(backend, client_factory, parser):
    if parser == "hiredis":
        pytest.importorskip("hiredis")  # the fast extra leaves it out where it fails (PyPy)
    c = client_factory(backend.address, parser=parser)
    big = "x" * 300_000 + "end"           # spans many reads
    assert c.set("big", big) and c.get("big") == big
    p = c.pipeline()
    for i in range(500):
        p.set(f"pp{i}", [i]).get(f"pp{i}")
    assert p.execute()[1::2] == [[i] for i in range(500)]
    with pytest.raises(ResponseError):
        c.execute("NOSUCH")
    assert c.execute("PING") == b"PONG"
