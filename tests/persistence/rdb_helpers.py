"""Shared by the RDB file tests: a dataset of every type and encoding, and a reader
of a whole server's data (type, value, and whether a long TTL is set) per key."""
from __future__ import annotations

import redis


def fill_every_type(client: redis.Redis) -> None:
    for db in (0, 5):
        c = redis.Redis(port=client.connection_pool.connection_kwargs["port"], db=db)
        c.mset({"int": 12345, "str": "hello" * 10, "bin": bytes(range(256)) * 3})
        c.rpush("small-list", *range(10))
        c.rpush("big-list", *[f"element-{i}" for i in range(3000)])
        c.hset("small-hash", mapping={"a": 1, "b": "two"})
        c.hset("big-hash", mapping={f"f{i}": i for i in range(1000)})
        c.sadd("intset", *range(100))
        c.sadd("big-set", *[f"m{i}" for i in range(1000)])
        c.zadd("small-zset", {"x": 1.5, "y": -2})
        c.zadd("big-zset", {f"z{i}": i / 7 for i in range(1000)})
        c.pfadd("hll", *range(500))
        c.set("ttl", "v", ex=1000)
        c.close()


def dataset(port: int) -> dict:
    out = {}
    for db in range(16):
        c = redis.Redis(port=port, db=db)
        for key in c.scan_iter(count=1000):
            kind = c.type(key).decode()
            value = {"string": c.get, "list": lambda k: c.lrange(k, 0, -1),
                     "hash": c.hgetall, "set": c.smembers,
                     "zset": lambda k: c.zrange(k, 0, -1, withscores=True)}[kind](key)
            out[db, key] = (kind, value, c.ttl(key) > 900)
        c.close()
    return out
