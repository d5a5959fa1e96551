"""Django's built-in RedisCache backend (django.core.cache.backends.redis), unmodified.

The cache API an app uses (set with timeouts, add, get_many, incr, touch, delete_many,
clear, has_key) against a distcache server, and the same calls against redis-server
give the same results.
"""
from __future__ import annotations

import time

import pytest

django = pytest.importorskip("django")

from django.conf import settings  # noqa: E402

pytestmark = pytest.mark.timeout(120)


def _cache(port: int):
    if not settings.configured:
        settings.configure(CACHES={}, USE_TZ=True)
        django.setup()
    from django.core.cache.backends.redis import RedisCache
    return RedisCache(f"redis://127.0.0.1:{port}/0", {"KEY_PREFIX": "app", "TIMEOUT": 300})


def _exercise(cache) -> list:
    """The calls an app makes; the list of what each returned."""
    seen = []
    cache.clear()
    seen.append(cache.set("greeting", "hello"))
    seen.append(cache.get("greeting"))
    seen.append(cache.add("greeting", "other"))  # exists: not replaced
    seen.append(cache.add("fresh", {"a": [1, 2]}))
    seen.append(cache.get("fresh"))
    seen.append(cache.get("missing", "default"))
    seen.append(cache.set_many({"n1": 1, "n2": 2, "obj": (1, "x")}))
    seen.append(sorted(cache.get_many(["n1", "n2", "obj", "nope"]).items()))
    seen.append(cache.incr("n1", 10))
    seen.append(cache.decr("n2"))
    with pytest.raises(ValueError):
        cache.incr("not-there")
    seen.append(cache.has_key("n1"))
    seen.append(cache.touch("n1", 100))
    seen.append(cache.touch("not-there", 100))
    seen.append(cache.delete("n1"))
    seen.append(cache.delete("n1"))
    seen.append(cache.delete_many(["n2", "obj"]))
    seen.append(cache.get_or_set("computed", lambda: 42))
    seen.append(cache.get_or_set("computed", lambda: 43))
    cache.set("forever", b"bytes", timeout=None)
    seen.append(cache.get("forever"))
    cache.set("gone", "x", timeout=0)  # a zero timeout expires the key at once
    seen.append(cache.get("gone"))
    cache.set("short", "x", timeout=1)
    seen.append(cache.get("short"))
    return seen


def _expires(cache) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if cache.get("short") is None:
            return True
        time.sleep(0.05)
    return False


def test_django_redis_cache_works_as_on_redis(server, reference_redis):
    ours, theirs = _cache(server.port), _cache(reference_redis.port)
    seen = _exercise(ours)
    assert seen == _exercise(theirs)
    assert seen[1] == "hello" and seen[2] is False and seen[8] == 11
    assert _expires(ours)
    ours.clear()
    assert ours.get("greeting") is None
