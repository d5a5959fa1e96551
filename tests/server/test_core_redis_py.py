"""redis-py compatibility: the same core operations through the sync and the
asyncio client, each over RESP2 and RESP3, held to the same expectations."""
from __future__ import annotations

import asyncio
from typing import Any, List, Tuple

import pytest
import redis
import redis.asyncio as aioredis

pytestmark = pytest.mark.filterwarnings("ignore:Call to deprecated:DeprecationWarning")

Step = Tuple[str, tuple, dict, Any]


def S(method: str, *args: Any, expect: Any = None, **kwargs: Any) -> Step:
    return (method, args, kwargs, expect)


ANY = object()


class Around:
    """Equal to ``value`` or one less: a TTL read back right after it was set."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return other in (self.value, self.value - 1)

    def __repr__(self) -> str:
        return f"Around({self.value})"

CASES = {
    "strings": [
        S("set", "s", "v", expect=True),
        S("get", "s", expect=b"v"),
        S("set", "s", "w", nx=True, expect=None),
        S("set", "s", "w", xx=True, get=True, expect=b"v"),
        S("setnx", "s", "z", expect=False),
        S("getset", "s", "x", expect=b"w"),
        S("mset", {"a": "1", "b": "2"}, expect=True),
        S("mget", ["a", "b", "nope"], expect=[b"1", b"2", None]),
        S("msetnx", {"a": "9", "c": "3"}, expect=False),
        S("append", "a", "23", expect=3),
        S("strlen", "a", expect=3),
        S("getrange", "a", 0, 1, expect=b"12"),
        S("setrange", "a", 1, "xx", expect=3),
        S("get", "a", expect=b"1xx"),
        S("getdel", "a", expect=b"1xx"),
        S("exists", "a", expect=0),
        S("setex", "e", 100, "v", expect=True),
        S("psetex", "p", 100000, "v", expect=True),
        S("getex", "e", persist=True, expect=b"v"),
        S("ttl", "e", expect=-1),
    ],
    "counters": [
        S("incr", "n", expect=1),
        S("incrby", "n", 41, expect=42),
        S("decr", "n", expect=41),
        S("decrby", "n", 40, expect=1),
        S("incrbyfloat", "n", 0.5, expect=1.5),
        S("incrbyfloat", "n", "1e3", expect=1001.5),
        S("get", "n", expect=b"1001.5"),
    ],
    "keys": [
        S("mset", {"k1": "1", "k2": "2", "other": "3"}, expect=True),
        S("keys", "k*", expect=ANY),
        S("type", "k1", expect=b"string"),
        S("rename", "k1", "k3", expect=True),
        S("renamenx", "k3", "k2", expect=False),
        S("copy", "k2", "k4", expect=True),
        S("move", "k4", 1, expect=True),
        S("exists", "k1", "k2", "k3", "k4", expect=2),
        S("touch", "k2", "k3", expect=2),
        S("unlink", "k2", expect=1),
        S("delete", "k3", "other", expect=2),
        S("dbsize", expect=0),
        S("randomkey", expect=None),
    ],
    "ttl": [
        S("set", "t", "v", expect=True),
        S("expire", "t", 100, expect=True),
        S("ttl", "t", expect=Around(100)),
        S("expire", "t", 50, gt=True, expect=False),
        S("expire", "t", 50, lt=True, expect=True),
        S("pexpire", "t", 200000, xx=True, expect=True),
        S("expire", "t", 10, nx=True, expect=False),
        S("expireat", "t", 4102444800, expect=True),
        S("expiretime", "t", expect=4102444800),
        S("pexpireat", "t", 4102444800123, expect=True),
        S("pexpiretime", "t", expect=4102444800123),
        S("persist", "t", expect=True),
        S("pttl", "t", expect=-1),
        S("ttl", "nope", expect=-2),
    ],
    "server": [
        S("ping", expect=True),
        S("echo", "hi", expect=b"hi"),
        S("dbsize", expect=0),
        S("set", "x", "1", expect=True),
        S("flushdb", expect=True),
        S("exists", "x", expect=0),
        S("config_set", "timeout", "0", expect=True),
        S("config_get", "timeout", expect={"timeout": "0"}),
        S("client_setname", "compat", expect=True),
        S("client_getname", expect=ANY),
        S("client_id", expect=ANY),
        S("time", expect=ANY),
        S("flushall", expect=True),
    ],
}


def check(step: Step, result: Any) -> None:
    method, args, kwargs, expect = step
    if expect is ANY:
        return
    if isinstance(expect, bool) and expect in (True, False) and isinstance(result, int):
        assert bool(result) is expect, (method, args, result)
    else:
        assert result == expect, (method, args, result)


def run_sync(port: int, protocol: int, steps: List[Step]) -> List[Any]:
    client = redis.Redis(port=port, protocol=protocol, socket_timeout=10)
    try:
        client.flushall()
        out = []
        for step in steps:
            method, args, kwargs, _ = step
            result = getattr(client, method)(*args, **kwargs)
            check(step, result)
            out.append(result)
        return out
    finally:
        client.close()


def run_async(port: int, protocol: int, steps: List[Step]) -> List[Any]:
    async def main() -> List[Any]:
        client = aioredis.Redis(port=port, protocol=protocol, socket_timeout=10)
        try:
            await client.flushall()
            out = []
            for step in steps:
                method, args, kwargs, _ = step
                result = await getattr(client, method)(*args, **kwargs)
                check(step, result)
                out.append(result)
            return out
        finally:
            await client.aclose()
    return asyncio.run(main())


RUNNERS = {"sync": run_sync, "asyncio": run_async}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("flavour", sorted(RUNNERS))
def test_core_operations(shared_server, flavour, protocol, case):
    results = RUNNERS[flavour](shared_server.port, protocol, CASES[case])
    assert len(results) == len(CASES[case])
    if case == "keys":
        assert sorted(results[1]) == [b"k1", b"k2"]


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("flavour", sorted(RUNNERS))
def test_errors_are_response_errors(shared_server, flavour, protocol):
    async def async_errors() -> List[str]:
        client = aioredis.Redis(port=shared_server.port, protocol=protocol)
        try:
            await client.set("s", "abc")
            out = []
            for call in (lambda: client.incr("s"), lambda: client.execute_command("NOPE"),
                         lambda: client.set("s", "v", ex=0)):
                with pytest.raises(redis.ResponseError) as info:
                    await call()
                out.append(str(info.value))
            return out
        finally:
            await client.aclose()

    def sync_errors() -> List[str]:
        client = redis.Redis(port=shared_server.port, protocol=protocol)
        try:
            client.set("s", "abc")
            out = []
            for call in (lambda: client.incr("s"), lambda: client.execute_command("NOPE"),
                         lambda: client.set("s", "v", ex=0)):
                with pytest.raises(redis.ResponseError) as info:
                    call()
                out.append(str(info.value))
            return out
        finally:
            client.close()

    errors = asyncio.run(async_errors()) if flavour == "asyncio" else sync_errors()
    assert errors == ["value is not an integer or out of range",
                      "unknown command 'NOPE', with args beginning with: ",
                      "invalid expire time in 'set' command"]


@pytest.mark.parametrize("protocol", [2, 3])
def test_pipeline_and_scan_iter(shared_server, protocol):
    client = redis.Redis(port=shared_server.port, protocol=protocol, socket_timeout=10)
    try:
        client.flushall()
        pipe = client.pipeline(transaction=False)
        for i in range(500):
            pipe.set(f"key:{i}", i)
        pipe.incr("counter")
        pipe.get("key:7")
        results = pipe.execute()
        assert results[:500] == [True] * 500 and results[500:] == [1, b"7"]
        assert len(set(client.scan_iter(match="key:*", count=100))) == 500
    finally:
        client.close()


@pytest.mark.parametrize("protocol", [2, 3])
def test_async_pipeline_concurrent_clients(shared_server, protocol):
    async def worker(n: int) -> int:
        client = aioredis.Redis(port=shared_server.port, protocol=protocol)
        try:
            pipe = client.pipeline(transaction=False)
            for _ in range(100):
                pipe.incr("shared-counter")
            await pipe.execute()
            return n
        finally:
            await client.aclose()

    async def main() -> bytes:
        client = aioredis.Redis(port=shared_server.port, protocol=protocol)
        try:
            await client.delete("shared-counter")
            await asyncio.gather(*(worker(i) for i in range(10)))
            return await client.get("shared-counter")
        finally:
            await client.aclose()

    assert asyncio.run(main()) == b"1000"
