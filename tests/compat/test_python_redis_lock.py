"""python-redis-lock: its Lua-scripted Lock, with expiry, renewal, reset and contention."""
from __future__ import annotations

import threading

import pytest
import redis

redis_lock = pytest.importorskip("redis_lock")
pytest.importorskip("lupa")

pytestmark = pytest.mark.timeout(120)


def test_lock_is_exclusive_and_released(server):
    conn = redis.Redis(port=server.port)
    first = redis_lock.Lock(conn, "job", expire=30)
    assert first.acquire(blocking=False)
    assert first.locked()
    assert not redis_lock.Lock(conn, "job", expire=30).acquire(blocking=False)
    first.extend(60)
    assert 30 < conn.ttl("lock:job") <= 60
    first.release()
    assert not first.locked()
    with pytest.raises(redis_lock.NotAcquired):
        first.release()
    second = redis_lock.Lock(conn, "job", expire=30)
    assert second.acquire(blocking=False)
    redis_lock.reset_all(conn)
    assert not second.locked()


def test_blocked_waiter_gets_the_lock_when_it_is_released(server):
    conn = redis.Redis(port=server.port)
    holder = redis_lock.Lock(conn, "shared", expire=30)
    assert holder.acquire()
    got = threading.Event()

    def wait_for_it() -> None:
        waiter = redis_lock.Lock(redis.Redis(port=server.port), "shared", expire=30)
        if waiter.acquire(timeout=20):  # woken by the release's pub/sub signal
            got.set()
            waiter.release()
    thread = threading.Thread(target=wait_for_it)
    thread.start()
    assert not got.wait(0.3)
    holder.release()
    thread.join(25)
    assert got.is_set()


def test_counter_under_contention_is_exact(server):
    total = [0]

    def work() -> None:
        conn = redis.Redis(port=server.port)
        for _ in range(25):
            with redis_lock.Lock(conn, "counter", expire=10):
                value = int(conn.get("n") or 0)
                conn.set("n", value + 1)
                total[0] += 1
    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert total[0] == 100
    assert int(redis.Redis(port=server.port).get("n")) == 100
