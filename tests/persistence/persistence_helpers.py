"""Shared helpers for the persistence tests: servers, dataset dumps, polling."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from servers import ROOT, distcache_server, wait_until

from distcache.server.commands.table import COMMANDS


def has(*names: str) -> bool:
    return all(n in COMMANDS for n in names)


def start(tmp_path: Path, *flags: str, env: Optional[dict] = None) -> Any:
    """A started distcache server with persistence on (appendonly yes by default)."""
    return distcache_server(tmp_path, *flags, persistence=True, env=env).start(timeout=60)


def client(proc: Any, **kw: Any) -> redis.Redis:
    return redis.Redis(port=proc.port, socket_timeout=20, retry=Retry(NoBackoff(), 0), **kw)


def poll(check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.02,
         what: str = "condition") -> Any:
    return wait_until(check, timeout, interval, what)


def info(r: redis.Redis) -> Dict[str, Any]:
    return r.info("persistence")


def wait_child_done(r: redis.Redis, timeout: float = 60.0) -> None:
    poll(lambda: not info(r)["rdb_bgsave_in_progress"]
         and not info(r)["aof_rewrite_in_progress"] and not info(r).get("aof_rewrite_scheduled"),
         timeout, what="background save/rewrite to finish")


def populate(r: redis.Redis, seed: int = 0, databases: int = 16) -> None:
    """Every available type, with and without TTLs, in every database."""
    far = int(time.time() * 1000) + 3_600_000
    for db in range(databases):
        p = r.pipeline(transaction=False)
        p.execute_command("SELECT", db)
        for i in range(5):
            p.set(f"s:{seed}:{i}", f"v{db}-{i}\x00\xff".encode())
        p.set(f"ttl:{seed}", b"x" * (db + 1), px=far - int(time.time() * 1000))
        p.incr(f"n:{seed}")
        p.incrbyfloat(f"f:{seed}", 1.5)
        if has("rpush"):
            p.rpush(f"l:{seed}", *[f"e{j}" for j in range(db + 3)])
            p.execute_command("PEXPIREAT", f"l:{seed}", far)
        if has("hset"):
            p.hset(f"h:{seed}", mapping={f"f{j}": f"v{j}" for j in range(db + 2)})
        if has("sadd"):
            p.sadd(f"set:{seed}", *[f"m{j}" for j in range(db + 2)])
        if has("zadd"):
            p.zadd(f"z:{seed}", {f"m{j}": j * 1.25 - 3 for j in range(db + 2)})
            p.zadd(f"zinf:{seed}", {"lo": float("-inf"), "hi": float("inf"), "mid": 0.1})
        if has("xadd"):
            populate_stream(p, f"x:{seed}", db)
        p.execute_command("SELECT", 0)
        p.execute()


def populate_stream(p: Any, key: str, n: int) -> None:
    """A stream with deletions, a trim, groups, consumers and pending entries."""
    for j in range(n + 5):
        p.execute_command("XADD", key, "*", "f", f"v{j}", "g", j)
    p.execute_command("XADD", key, "MAXLEN", "~", "1000", "*", "big", "x" * 300)
    p.execute_command("XGROUP", "CREATE", key, "g1", "0")
    p.execute_command("XGROUP", "CREATE", key, "g2", "$", "ENTRIESREAD", 3)
    p.execute_command("XREADGROUP", "GROUP", "g1", "alice", "COUNT", 3, "STREAMS", key, ">")
    p.execute_command("XREADGROUP", "GROUP", "g1", "bob", "COUNT", 2, "STREAMS", key, ">")
    p.execute_command("XREADGROUP", "GROUP", "g1", "alice", "STREAMS", key, "0")
    p.execute_command("XREADGROUP", "GROUP", "g1", "carol", "NOACK", "COUNT", 1, "STREAMS",
                      key, ">")
    p.execute_command("XAUTOCLAIM", key, "g1", "dave", 0, "0", "COUNT", 1)
    p.execute_command("XGROUP", "CREATECONSUMER", key, "g2", "erin")
    p.execute_command("XTRIM", key, "MAXLEN", n + 4)


def stream_state(port: int, db: int, key: bytes) -> Any:
    """XINFO STREAM FULL without what a restart may change (consumers' seen-time)."""
    raw = redis.Redis(port=port, db=db, socket_timeout=20, protocol=2)
    raw.response_callbacks.clear()
    try:
        info = raw.execute_command("XINFO", "STREAM", key, "FULL", "COUNT", 0)
    finally:
        raw.close()
    for group in info[info.index(b"groups") + 1]:
        for consumer in group[group.index(b"consumers") + 1]:
            consumer[consumer.index(b"seen-time") + 1] = None
    return info


def dump(r: redis.Redis, databases: int = 16) -> Dict[Tuple[int, bytes], Any]:
    """Every key of every database as (type, value, absolute expiry)."""
    out: Dict[Tuple[int, bytes], Any] = {}
    conn = redis.Redis(port=r.connection_pool.connection_kwargs["port"], socket_timeout=20)
    try:
        for db in range(databases):
            conn.execute_command("SELECT", db)
            for key in conn.scan_iter(count=1000):
                kind = conn.type(key)
                if kind == b"string":
                    value: Any = conn.get(key)
                elif kind == b"list":
                    value = conn.lrange(key, 0, -1)
                elif kind == b"hash":
                    value = conn.hgetall(key)
                elif kind == b"set":
                    value = sorted(conn.smembers(key))
                elif kind == b"zset":
                    value = conn.zrange(key, 0, -1, withscores=True)
                elif kind == b"stream":
                    value = stream_state(conn.connection_pool.connection_kwargs["port"], db, key)
                else:
                    value = kind
                when = conn.execute_command("PEXPIRETIME", key)
                out[(db, key)] = (kind, value, when)
    finally:
        conn.close()
    return out


def check_log(path: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "distcache", "check-log", str(path), *extra],
                          capture_output=True, text=True, env=env, timeout=60)


def aof_dir(tmp_path: Path) -> Path:
    return tmp_path / "data" / "appendonlydir"


def incr_files(tmp_path: Path) -> List[Path]:
    manifest = (aof_dir(tmp_path) / "appendonly.aof.manifest").read_text().split("\n")
    return [aof_dir(tmp_path) / line.split()[1] for line in manifest
            if line.strip().endswith("type i")]


def start_expecting_failure(tmp_path: Path, *flags: str, timeout: float = 30.0) -> str:
    """Start a server that must refuse to start; returns its log."""
    proc = distcache_server(tmp_path, *flags, persistence=True)
    proc.workdir.mkdir(parents=True, exist_ok=True)
    with open(proc.log_path, "ab") as log:
        p = subprocess.Popen(proc.argv, cwd=proc.workdir, stdout=log, stderr=subprocess.STDOUT,
                             env=proc.env)
    try:
        code = p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise AssertionError("the server started although it should have refused")
    assert code != 0
    return proc.log()


def crash_restart(tmp_path: Path, proc: Any, *flags: str, env: Optional[dict] = None,
                  compare: bool = True, wait_until: Optional[Callable[[], Any]] = None) -> Any:
    """SIGKILL ``proc`` and start a new server on its data; with ``compare`` the
    new server must hold exactly the dataset the old one had."""
    before = dump(client(proc)) if compare else None
    proc.kill()
    if wait_until is not None:
        poll(wait_until, what="the wait before restarting")
    new = start(tmp_path, *flags, env=env)
    if compare:
        try:
            assert dump(client(new)) == before
        except BaseException:
            new.stop()
            raise
    return new
