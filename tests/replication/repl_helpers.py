"""Shared helpers of the replication tests: dataset comparison and sync waits."""
from __future__ import annotations

from typing import Any, Dict, Tuple

import redis

from servers import wait_until


def info(client: redis.Redis, section: str = "replication") -> Dict[str, Any]:
    return client.info(section)


def in_sync(primary: redis.Redis, replica: redis.Redis) -> bool:
    """The replica's link is up and it has applied everything the primary fed."""
    rinfo = info(replica)
    if rinfo.get("master_link_status") != "up":
        return False
    return rinfo["master_repl_offset"] == info(primary)["master_repl_offset"]


def wait_synced(primary: redis.Redis, replica: redis.Redis, timeout: float = 30) -> None:
    wait_until(lambda: in_sync(primary, replica), timeout, 0.05,
               "the replica caught up with the primary")


def db_client(client: redis.Redis, db: int) -> redis.Redis:
    """A client of the same server on database ``db``."""
    kwargs = client.connection_pool.connection_kwargs
    return redis.Redis(host=kwargs.get("host", "127.0.0.1"), port=kwargs["port"], db=db,
                       socket_timeout=30)


def snapshot(server: redis.Redis, databases: int = 16) -> Dict[Tuple[int, bytes], Any]:
    """Every key of every database: its type, value and absolute expiry."""
    out: Dict[Tuple[int, bytes], Any] = {}
    for db in range(databases):
        client = db_client(server, db)
        for key in client.scan_iter(count=1000):
            kind = client.type(key).decode()
            if kind == "string":
                value: Any = client.get(key)
            elif kind == "list":
                value = client.lrange(key, 0, -1)
            elif kind == "hash":
                value = client.hgetall(key)
            elif kind == "set":
                value = sorted(client.smembers(key))
            elif kind == "zset":
                value = client.zrange(key, 0, -1, withscores=True)
            else:
                value = kind
            out[(db, key)] = (kind, value, client.execute_command("PEXPIRETIME", key))
        client.close()
    return out


def assert_same_data(primary: redis.Redis, replica: redis.Redis) -> int:
    """Compare the datasets key by key; returns the number of keys."""
    ours, theirs = snapshot(primary), snapshot(replica)
    missing = set(ours) - set(theirs)
    extra = set(theirs) - set(ours)
    assert not missing and not extra, f"missing on the replica: {sorted(missing)[:5]}, " \
                                      f"only on the replica: {sorted(extra)[:5]}"
    for key, value in ours.items():
        assert theirs[key] == value, f"{key}: primary {value!r:.200} != replica " \
                                     f"{theirs[key]!r:.200}"
    return len(ours)


def fill_every_type(server: redis.Redis, prefix: str = "", n: int = 20) -> None:
    """Keys of every type and encoding (small and large), some with TTLs, in 3 databases."""
    for db in (0, 1, 5):
        client = db_client(server, db)
        p = client.pipeline(transaction=False)
        for i in range(n):
            p.set(f"{prefix}s{i}", f"value-{i}")
            p.set(f"{prefix}int{i}", i * 1000)
            p.set(f"{prefix}long{i}", "x" * 100 + str(i))
            p.rpush(f"{prefix}l{i}", *[f"e{j}" for j in range(i + 1)])
            p.hset(f"{prefix}h{i}", mapping={f"f{j}": f"v{j}" for j in range(i + 1)})
            p.sadd(f"{prefix}set{i}", *[f"m{j}" for j in range(i + 1)])
            p.sadd(f"{prefix}iset{i}", *range(i + 1))
            p.zadd(f"{prefix}z{i}", {f"m{j}": j * 1.5 for j in range(i + 1)})
            p.set(f"{prefix}ttl{i}", "v", px=3_600_000 + i)
        p.rpush(f"{prefix}biglist", *[f"item-{j}" for j in range(1000)])
        p.hset(f"{prefix}bighash", mapping={f"f{j}": "v" * 70 for j in range(600)})
        p.zadd(f"{prefix}bigz", {f"m{j}": j for j in range(300)})
        p.sadd(f"{prefix}bigset", *[f"m{j}" for j in range(600)])
        p.pfadd(f"{prefix}hll", *[f"u{j}" for j in range(100)])
        p.execute()
        client.close()
