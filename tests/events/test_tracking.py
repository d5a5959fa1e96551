"""CLIENT TRACKING: replies and invalidation messages compared byte for byte with
redis-server, over raw connections (client ids normalised)."""
from __future__ import annotations

import socket
import time

import pytest

from servers import distcache_server


def _encode(words) -> bytes:
    return b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words)


_SYNC = b"$8\r\n__sync__\r\n"


class Conn:
    """A raw connection; ``talk`` sends commands and reads everything up to a PING's reply."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.id = int(self.talk("CLIENT ID")[1:-2])

    def talk(self, *commands: str, ids=None) -> bytes:
        for cmd in commands + ("PING __sync__",):  # answered in subscribed mode too
            words = [w.encode() for w in cmd.split()]
            if ids:
                words = [ids.get(w, w) for w in words]
            self.sock.sendall(_encode(words))
        data = b""
        # Not endswith: a push (an expiry's invalidation) can follow the reply in
        # the same read, and waiting for more would then wait for nothing.
        while _SYNC not in data:
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed"
            data += chunk
        return data.replace(_SYNC, b"", 1)

    def wait_for(self, count: int) -> bytes:
        """Read until ``count`` invalidation messages came (BCAST sends them a loop turn later)."""
        data = b""
        deadline = time.monotonic() + 10
        while data.count(b"invalidate") < count:
            assert time.monotonic() < deadline, data
            data += self.talk()
        return data


#: (connection, commands); ``{r}`` is connection r's id.
SCRIPTS = {
    "default": [
        ("a", ["HELLO 3"]), ("a", ["CLIENT TRACKING ON", "GET k", "SET k 1", "GET k",
                                   "CLIENT TRACKINGINFO", "CLIENT GETREDIR"]),
        ("b", ["SET k 2", "MSET k 3 j 3"]), ("a", ["PING"]), ("b", ["SET k 4"]), ("a", ["PING"]),
    ],
    "errors": [
        ("a", ["HELLO 3"]),
        ("a", ["CLIENT TRACKING ON", "CLIENT TRACKING ON BCAST", "CLIENT TRACKING ON PREFIX a",
               "CLIENT TRACKING ON OPTIN OPTOUT", "CLIENT TRACKING ON REDIRECT 999999",
               "CLIENT TRACKING ON OPTIN", "CLIENT CACHING YES", "CLIENT CACHING NO",
               "CLIENT CACHING MAYBE", "CLIENT TRACKING OFF", "CLIENT CACHING YES",
               "CLIENT TRACKING ON BCAST PREFIX ab PREFIX a", "CLIENT TRACKING ON BCAST OPTIN",
               "CLIENT TRACKING MAYBE", "CLIENT TRACKING ON FOO", "CLIENT TRACKING ON REDIRECT x",
               "CLIENT TRACKING ON REDIRECT 0", "CLIENT TRACKING ON OPTOUT",
               "CLIENT TRACKING ON OPTIN", "CLIENT TRACKING OFF",
               "CLIENT TRACKING ON BCAST PREFIX a", "CLIENT TRACKING ON BCAST PREFIX abc",
               "CLIENT TRACKINGINFO", "CLIENT TRACKING ON REDIRECT {b} REDIRECT {b}"]),
    ],
    "bcast": [
        ("a", ["HELLO 3"]),
        ("a", ["CLIENT TRACKING ON BCAST PREFIX a PREFIX b NOLOOP", "CLIENT TRACKINGINFO",
               "SET a1 x", "FLUSHDB"]),
        ("b", ["SET a1 x"]), ("a", ["WAIT 1"]),
        ("b", ["MSET a3 x a2 x b2 y c z"]), ("a", ["WAIT 2"]),
        ("a", ["CLIENT TRACKING OFF", "CLIENT TRACKINGINFO", "CLIENT GETREDIR"]),
    ],
    "redirect_resp2": [
        ("r", ["SUBSCRIBE __redis__:invalidate"]),
        ("a", ["CLIENT TRACKING ON REDIRECT {r}", "GET k", "MGET k j", "CLIENT GETREDIR",
               "CLIENT TRACKINGINFO"]),
        ("b", ["SET k 2", "DEL j", "SET j 1"]), ("r", ["PING"]),
        ("b", ["FLUSHALL"]), ("r", ["PING"]),
        ("a", ["CLIENT TRACKING OFF", "CLIENT TRACKING ON", "GET k"]),
        ("b", ["SET k 2"]), ("a", ["PING"]),
    ],
    "broken_redirect": [
        ("a", ["HELLO 3"]), ("a", ["CLIENT TRACKING ON REDIRECT {r}", "GET k"]),
        ("r", ["CLOSE"]), ("b", ["SET k 3"]),
        ("a", ["PING", "CLIENT TRACKINGINFO", "CLIENT GETREDIR"]),
    ],
    "optin_optout": [
        ("a", ["HELLO 3"]),
        ("a", ["CLIENT TRACKING ON OPTIN", "GET x", "CLIENT CACHING YES", "CLIENT TRACKINGINFO",
               "GET y", "CLIENT TRACKINGINFO"]),
        ("b", ["MSET x 1 y 1"]), ("a", ["PING"]),
        ("a", ["CLIENT TRACKING OFF", "CLIENT TRACKING ON OPTOUT", "CLIENT CACHING NO",
               "CLIENT TRACKINGINFO", "GET x", "GET y"]),
        ("b", ["MSET x 1 y 1"]), ("a", ["PING"]),
        ("a", ["CLIENT TRACKING OFF", "CLIENT TRACKING ON OPTIN", "CLIENT CACHING YES", "MULTI",
               "GET m1", "GET m2", "EXEC", "GET m3"]),
        ("b", ["MSET m1 1 m2 1 m3 1"]), ("a", ["PING"]),
    ],
    "noloop": [
        ("a", ["HELLO 3"]),
        ("a", ["CLIENT TRACKING ON NOLOOP", "GET q", "SET q 1", "GET q"]),
        ("b", ["SET q 2"]), ("a", ["PING", "GET q", "EXPIRE q 0", "PING"]),
    ],
    # A script's read makes its caller track the keys the script declared (Redis 7.0),
    # not the key it read; a script that only writes or calls nothing tracks none.
    "scripts": [
        ("a", ["HELLO 3"]), ("a", ["FUNCTION LOAD REPLACE {lib}"]),
        ("a", ["CLIENT TRACKING ON", "EVAL redis.call('get','other');return(1) 1 k1",
               "EVAL return(1) 1 k2", "EVAL redis.call('set','w','v');return(1) 1 k3",
               "EVAL return(redis.call('get',KEYS[1])) 1 k4",
               "EVAL_RO return(redis.call('get',KEYS[1])) 1 k5", "FCALL g 1 k6",
               "FCALL_RO g 1 k7", "CLIENT TRACKINGINFO"]),
        ("b", ["MSET other x k1 x k2 x k3 x k4 x k5 x k6 x k7 x w x"]), ("a", ["PING"]),
        ("a", ["CLIENT TRACKING OFF", "CLIENT TRACKING ON OPTIN",
               "EVAL return(redis.call('get',KEYS[1])) 1 o1", "CLIENT CACHING YES",
               "EVAL return(redis.call('get',KEYS[1])) 1 o2"]),
        ("b", ["MSET o1 1 o2 1"]), ("a", ["PING"]),
        ("a", ["CLIENT TRACKING OFF", "CLIENT TRACKING ON BCAST PREFIX z",
               "EVAL return(redis.call('get',KEYS[1])) 1 k8"]),
        ("b", ["SET k8 1"]), ("a", ["PING"]),
    ],
}
#: Words that cannot be written without spaces.
WORDS = {b"{lib}": b"#!lua name=trk\nredis.register_function('g', function(k) "
                   b"return redis.call('get', k[1]) end)"}


def _run(port: int, script) -> list:
    conns = {name: Conn(port) for name in "abr"}
    ids = {b"{%s}" % name.encode(): str(conn.id).encode() for name, conn in conns.items()}
    words = {**ids, **WORDS}
    out = []
    conns["a"].talk("FLUSHALL")
    for name, commands in script:
        conn = conns[name]
        if commands == ["CLOSE"]:
            conn.sock.close()
            # wait until the server has seen the close (its client is gone)
            gone = b"id=%d " % conn.id
            deadline = time.monotonic() + 10
            while gone in conns["b" if name != "b" else "a"].talk("CLIENT LIST"):
                assert time.monotonic() < deadline, "closed client still listed"
                time.sleep(0.01)
            continue
        if commands[0].startswith("WAIT"):
            data = conn.wait_for(int(commands[0].split()[1]))
        else:
            data = conn.talk(*commands, ids=words)
        if commands == ["HELLO 3"]:
            continue  # the HELLO map differs (server name, version, id)
        for conn_name, value in ids.items():
            data = data.replace(b":%s\r\n" % value, b":%s\r\n" % conn_name)
        out.append((name, commands[0], data))
    for conn in conns.values():
        conn.sock.close()
    return out


@pytest.fixture(scope="module")
def ours(tmp_path_factory):
    with distcache_server(tmp_path_factory.mktemp("tracking")) as srv:
        yield srv


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_tracking_same_as_redis(ours, reference_redis, name):
    mine = _run(ours.port, SCRIPTS[name])
    theirs = _run(reference_redis.port, SCRIPTS[name])
    for step_ours, step_theirs in zip(mine, theirs):
        assert step_ours == step_theirs


def test_table_limit_invalidates_the_excess(ours):
    a = Conn(ours.port)
    a.talk("HELLO 3", "FLUSHALL", "CONFIG SET tracking-table-max-keys 2", "CLIENT TRACKING ON")
    try:
        data = a.talk("MGET k1 k2 k3 k4", "PING")
        assert data.count(b"invalidate") == 2  # before PING's reply, as Redis
        assert data.endswith(b"+PONG\r\n")
        info = a.talk("INFO stats")
        assert b"tracking_total_keys:2" in info
    finally:
        a.talk("CONFIG SET tracking-table-max-keys 1000000")
        a.sock.close()


def _invalidated(data: bytes) -> list:
    """The keys of the invalidation pushes in ``data``."""
    keys = []
    for push in data.split(b">2\r\n$10\r\ninvalidate\r\n")[1:]:
        count, _, rest = push[1:].partition(b"\r\n")
        words = rest.split(b"\r\n")
        keys += [words[2 * i + 1] for i in range(int(count))]
    return keys


def _over_the_limit(port: int) -> tuple:
    a, b = Conn(port), Conn(port)
    keys = ["k%d" % i for i in range(50)]
    a.talk("HELLO 3", "FLUSHALL", "CONFIG SET tracking-table-max-keys 10", "CLIENT TRACKING ON")
    try:
        first = _invalidated(a.talk("MGET " + " ".join(keys), "PING"))
        b.talk("MSET " + " ".join(k + " x" for k in keys))
        second = _invalidated(a.talk("PING"))
    finally:
        a.talk("CONFIG SET tracking-table-max-keys 1000000")
        a.sock.close()
        b.sock.close()
    return keys, first, second


def test_table_limit_evicts_random_keys_as_redis(ours, reference_redis):
    """40 keys over the limit are invalidated before the next command's reply, the 10
    kept ones when they change; which ones is random (as Redis), not the oldest."""
    for port in (ours.port, reference_redis.port):
        keys, first, second = _over_the_limit(port)
        assert (len(first), len(second)) == (40, 10)
        assert sorted(first + second) == sorted(k.encode() for k in keys)
    for _ in range(3):  # the oldest 40 each time has odds of 1 in C(50, 10)
        if sorted(_over_the_limit(ours.port)[2]) != [b"k%d" % i for i in range(40, 50)]:
            break
    else:
        raise AssertionError("the newest keys were kept every time")


def test_redis_py_client_side_cache_is_invalidated(ours, monkeypatch):
    import redis
    from redis.cache import CacheConfig
    from redis.connection import CacheProxyConnection
    # redis-py enables its cache only for servers reporting 7.4+ (a product policy,
    # not a protocol need: tracking is Redis 6's); distcache reports 7.0.15.
    monkeypatch.setattr(CacheProxyConnection, "MIN_ALLOWED_VERSION", "7.0.0")
    cached = redis.Redis(port=ours.port, protocol=3, cache_config=CacheConfig())
    other = redis.Redis(port=ours.port)
    try:
        other.set("cc:k", "v1")
        assert cached.get("cc:k") == b"v1"
        assert cached.get("cc:k") == b"v1"  # now from the local cache
        assert cached.get_cache().size >= 1
        other.set("cc:k", "v2")
        deadline = time.monotonic() + 10
        while cached.get("cc:k") != b"v2":  # served stale only until the push is read
            assert time.monotonic() < deadline, "stale value kept"
            time.sleep(0.01)
        other.delete("cc:k")
        deadline = time.monotonic() + 10
        while cached.get("cc:k") is not None:
            assert time.monotonic() < deadline, "deleted value kept"
            time.sleep(0.01)
    finally:
        cached.close()
        other.close()


def test_expiry_invalidates_a_tracked_key(ours):
    a, b = Conn(ours.port), Conn(ours.port)
    try:
        a.talk("HELLO 3", "CLIENT TRACKING ON")
        b.talk("SET exp:k v PX 500")  # long enough for the GET to find it under load
        assert b"v" in a.talk("GET exp:k")
        data = a.wait_for(1)  # the active expiry cycle deletes it; no one reads it again
        assert b"exp:k" in data
    finally:
        a.sock.close()
        b.sock.close()


def test_tracking_costs_nothing_after_the_last_client_leaves(ours):
    a = Conn(ours.port)
    a.talk("HELLO 3", "CLIENT TRACKING ON", "GET x")
    assert b"tracking_clients:1" in a.talk("INFO clients")
    a.talk("CLIENT TRACKING OFF")
    info = a.talk("INFO clients") + a.talk("INFO stats")
    assert b"tracking_clients:0" in info and b"tracking_total_keys:0" in info
    a.sock.close()
