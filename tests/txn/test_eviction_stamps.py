"""LRU access stamps and the memory-check credit, in process (no server).

While an LRU policy is active each database's class gets copies of
Database.get/set/modified with the stamp inlined (distcache.server.eviction_stamps.
_lru_methods); they must behave exactly as the general LruDatabase methods
and must only be used while Database's methods are the ones they copy.
"""
from __future__ import annotations

from typing import Any, List, Tuple

import pytest

from distcache.server import eviction, eviction_stamps, keyspace
from distcache.server.app import CacheServer
from distcache.server.keyspace import Database, Keyspace, now_ms


def _lru_db(fast: bool) -> Tuple[Keyspace, Database, dict]:
    ks = Keyspace(1)
    db = ks.dbs[0]
    lru: dict = {}
    methods = eviction_stamps._lru_methods(lru) if fast else {}
    db.__class__ = eviction_stamps._db_class(eviction_stamps.LruDatabase, 0, lru=lru, **methods)
    return ks, db, lru


def _script(ks: Keyspace, db: Database, lru: dict) -> List[Any]:
    """The same accesses on any LRU database; what they returned and left behind."""
    seen: List[Tuple[bytes, bytes]] = []
    ks.watch_listeners.append(lambda d, key: seen.append(key))
    log = []
    eviction_stamps._clock = 100
    db.set(b"a", b"1")
    db.set(b"b", b"2")
    db.set(b"gone", b"3")
    db.expires[b"gone"] = now_ms() - 1  # due: a read expires it
    eviction_stamps._clock = 200
    log.append((db.get(b"a"), db.get(b"missing"), db.get(b"gone")))
    log.append(dict(lru))
    eviction_stamps._clock = 300
    db.watched[b"b"] = {object()}
    db.set(b"b", b"x", keep_ttl=True)
    db.set_expire(b"a", now_ms() + 60_000)
    eviction_stamps._clock = 400
    db.set(b"a", b"y")  # clears the TTL
    log.append((dict(lru), dict(db.expires), list(seen)))
    log.append((ks.hits, ks.misses, ks.dirty, ks.expired_keys))
    return log


def test_inlined_lru_methods_are_in_use():
    assert keyspace.INLINE_SAFE == {"get": True, "set": True, "modified": True}, (
        "Database.get/set/modified changed: update keyspace._reference_*, the "
        "copies in eviction_stamps._lru_methods and strings.get_run to match")
    server = CacheServer("127.0.0.1", 0, save="", appendonly="no", maxmemory="1gb",
                         maxmemory_policy="allkeys-lru")
    cls = server.keyspace.dbs[3].__class__
    assert issubclass(cls, eviction_stamps.LruDatabase)
    for name in ("get", "set", "modified"):
        assert getattr(cls, name).__qualname__ == f"_lru_methods.<locals>.{name}"
    server.config.set("maxmemory-policy", "noeviction")
    server.eviction.configure()
    assert server.keyspace.dbs[3].__class__ is Database


def test_inlined_lru_methods_match_the_general_ones():
    saved = eviction_stamps._clock
    try:
        fast, general = _script(*_lru_db(True)), _script(*_lru_db(False))
    finally:
        eviction_stamps._clock = saved
    assert fast == general
    (read, stamps, (final, expires, seen), counters) = fast
    assert read == (b"1", None, None)
    # a hit stamps, a miss does not; expiring a key is a write (stamped until pruned)
    assert stamps == {b"a": 200, b"b": 100, b"gone": 200}
    assert final == {b"a": 400, b"b": 300, b"gone": 200} and expires == {}
    assert seen == [b"b", b"a", b"a"]  # while anything is watched, WATCH sees every write
    assert counters == (1, 2, 7, 1)


def test_changed_database_methods_fall_back(monkeypatch):
    monkeypatch.setitem(keyspace.INLINE_SAFE, "get", False)
    assert set(eviction_stamps._lru_methods({})) == {"set", "modified"}
    monkeypatch.setitem(keyspace.INLINE_SAFE, "get", True)
    monkeypatch.setitem(keyspace.INLINE_SAFE, "modified", False)
    assert set(eviction_stamps._lru_methods({})) == {"get"}  # set inlines modified too


def test_check_credit_grows_only_far_from_the_limit():
    server = CacheServer("127.0.0.1", 0, save="", appendonly="no", maxmemory="1gb")
    engine = server.eviction
    engine.avg_key = 100.0
    per_key = engine.avg_key + eviction.EXPIRE_ENTRY

    def credit_with_room(keys: int) -> int:
        engine.maxmemory = engine._estimate(None) + int(keys * per_key) + 1
        engine._set_credit()
        return server.oom_credit

    assert credit_with_room(10_000_000) == eviction.CHECK_EVERY_FAR
    assert credit_with_room(64 * 512) == 512  # 1/64 of what still fits
    assert credit_with_room(10_000) == eviction.CHECK_EVERY
    assert credit_with_room(100) == 100  # never past the limit
    assert credit_with_room(0) == 0


def test_swapdb_moves_the_stamps_with_the_keys():
    server = CacheServer("127.0.0.1", 0, save="", appendonly="no", maxmemory="1gb",
                         **{"maxmemory-policy": "allkeys-lru"})
    first, second = server.keyspace.dbs[0], server.keyspace.dbs[1]
    eviction_stamps._clock = 100
    first.set(b"old", b"v")
    eviction_stamps._clock = 500
    second.set(b"new", b"v")
    server.keyspace.swap(0, 1)
    assert first.get(b"new") == b"v" and second.peek(b"old") == b"v"
    assert first.__class__.lru == {b"new": 500}
    assert second.__class__.lru == {b"old": 100}
    eviction_stamps._clock = 600
    first.set(b"x", b"v")  # the inlined stamps write to the swapped-in side dict
    assert first.__class__.lru[b"x"] == 600


@pytest.mark.parametrize("policy", ["allkeys-lru", "allkeys-lfu"])
def test_type_exists_and_ttl_are_not_accesses(policy):
    """Redis reads keys with LOOKUP_NOTOUCH there: counted, but no stamp."""
    from distcache.server.connection import Client
    server = CacheServer("127.0.0.1", 0, save="", appendonly="no", maxmemory="1gb",
                         **{"maxmemory-policy": policy, "lfu-log-factor": "0"})
    server.loading = False  # as once started (in process: no start)
    client = Client(server)
    out: List[bytes] = []
    client.execute([b"SET", b"k", b"v"], out)
    assert out == [b"+OK\r\n"]
    side = server.keyspace.dbs[0].__class__.__dict__["lru" if policy.endswith("lru") else "lfu"]
    before = dict(side)
    eviction_stamps._clock = 10 ** 12  # a later tick: any stamp would show
    hits = server.keyspace.hits
    for name in (b"TYPE", b"EXISTS", b"TTL", b"PTTL", b"EXPIRETIME", b"PEXPIRETIME"):
        client.execute([name, b"k"], [])
    assert side == before
    assert server.keyspace.hits == hits + 6
    client.execute([b"GET", b"k"], [])
    assert side != before
