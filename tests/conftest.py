"""Shared fixtures: real server processes on free ports in temp directories."""
from __future__ import annotations

import pytest

from servers import REDIS_SERVER, distcache_server, redis_server


@pytest.fixture
def server(tmp_path):
    """A fresh distcache server process (no persistence)."""
    with distcache_server(tmp_path) as proc:
        yield proc


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """One distcache server per test module, for tests that FLUSHALL first."""
    with distcache_server(tmp_path_factory.mktemp("shared")) as proc:
        yield proc


@pytest.fixture(scope="module")
def reference_redis(tmp_path_factory):
    """A real redis-server, or skip when it is not installed."""
    if not REDIS_SERVER:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with redis_server(tmp_path_factory.mktemp("redis")) as proc:
        yield proc


@pytest.fixture
def r(shared_server):
    """A redis-py client on the shared server, with every database flushed."""
    import redis
    client = redis.Redis(port=shared_server.port, socket_timeout=10)
    client.flushall()
    yield client
    client.close()


def pytest_addoption(parser):
    group = parser.getgroup("distcache")
    group.addoption("--shard", metavar="K/N", default=None,
                    help="run shard K (0-based) of N of the test files, split by measured "
                         "duration (tests/sharding.py, tests/durations.json)")
    group.addoption("--shard-keep", metavar="PATH", action="append", default=[],
                    help="with --shard: a test file or directory every shard runs")
    group.addoption("--shard-rest-only", action="store_true", default=False,
                    help="with --shard: leave out the --shard-keep files (CI's next shard "
                         "after a run that had them; the split stays the same)")


def _shard(config):
    """(always-run files, this shard's files) for --shard, or None; computed once."""
    text = config.getoption("shard")
    if not text:
        return None
    if not hasattr(config, "_distcache_shard"):
        import sharding
        try:
            k, n = sharding.parse_shard(text)
        except ValueError as exc:
            raise pytest.UsageError(str(exc))
        keep = [sharding.ROOT.joinpath(p).resolve().relative_to(sharding.ROOT).as_posix()
                for p in config.getoption("shard_keep")]
        config._distcache_shard = (k, n) + sharding.shard_files(k, n, keep)
    return config._distcache_shard


def pytest_terminal_summary(terminalreporter, config):
    shard = _shard(config)
    if shard is not None:  # printed under -q as well, for CI's log
        k, n, always, files = shard
        terminalreporter.write_line(
            f"shard {k}/{n}: {len(always)} files every shard runs + {len(files)} of the "
            f"rest: {' '.join(f[len('tests/'):] for f in files)}")


def pytest_collection_modifyitems(config, items):
    shard = _shard(config)
    if shard is None:
        return
    from sharding import ROOT
    wanted = set(shard[3]) if config.getoption("shard_rest_only") else set(shard[2]) | set(shard[3])
    selected, deselected = [], []
    for item in items:
        name = item.path.resolve().relative_to(ROOT).as_posix()
        (selected if name in wanted else deselected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected
