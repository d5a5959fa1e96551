"""LATENCY HISTOGRAM against redis-server: the same commands, calls and reply shapes
(RESP2 and RESP3); the buckets' labels are powers of two in µs on both, but the
durations differ, so the counts per bucket are checked for consistency only."""
from __future__ import annotations

import pytest
import redis

from distcache.server.monitoring import BUCKET_USEC

#: Commands run on both servers before asking; each is timed by distcache once the
#: slow log times everything (slowlog-log-slower-than 0).
WORKLOAD = [("SET", "k", "v"), ("SET", "k", "w"), ("LPUSH", "l", "x"), ("CONFIG", "GET", "hz"),
            ("CONFIG", "GET", "maxmemory"), ("LRANGE", "l", "0", "-1")]


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def clients(request, shared_server, reference_redis):
    out = []
    for proc in (shared_server, reference_redis):
        client = redis.Redis(host="127.0.0.1", port=proc.port, protocol=request.param,
                             socket_timeout=10)
        client.config_set("slowlog-log-slower-than", 0)
        client.config_resetstat()
        out.append(client)
    yield out
    for client in out:
        client.config_set("slowlog-log-slower-than", 10000)
        client.close()


def _histogram(client, *names):
    for command in WORKLOAD:
        client.execute_command(*command)
    return client.execute_command("LATENCY", "HISTOGRAM", *names)


def _as_dict(reply):
    """RESP2 replies are flat lists: the same maps."""
    if isinstance(reply, list):
        return {reply[i]: _as_dict(reply[i + 1]) for i in range(0, len(reply), 2)}
    return reply


def _check_buckets(entry):
    """Cumulative counts at growing power-of-two labels, ending at ``calls``."""
    buckets = entry[b"histogram_usec"]
    labels = list(buckets)
    assert labels == sorted(labels) and set(labels) <= set(BUCKET_USEC)
    counts = list(buckets.values())
    assert counts == sorted(counts) and len(set(counts)) == len(counts)
    assert counts[-1] == entry[b"calls"]


@pytest.mark.parametrize("names", [("set", "lpush", "nosuch", "config|get"), ("config",),
                                   ("CONFIG|GET", "lrange"), ("nosuch",)])
def test_histogram_shape_matches_redis(clients, names):
    replies = [_histogram(client, *names) for client in clients]
    types = [type(reply) for reply in replies]
    assert types[0] == types[1]  # a map in RESP3, a flat array in RESP2
    ours, theirs = (_as_dict(reply) for reply in replies)
    assert set(ours) == set(theirs)
    for name, entry in ours.items():
        assert set(entry) == set(theirs[name]) == {b"calls", b"histogram_usec"}
        assert entry[b"calls"] == theirs[name][b"calls"]
        _check_buckets(entry)
        _check_buckets(theirs[name])


def test_histogram_of_everything_and_reset(clients):
    ours, theirs = (_as_dict(_histogram(client)) for client in clients)
    for name in (b"set", b"lpush", b"config|get", b"lrange"):
        assert ours[name][b"calls"] == theirs[name][b"calls"]
    for client in clients:
        client.config_resetstat()
    # After RESETSTAT, only the RESETSTAT itself (config|resetstat) may be there.
    ours, theirs = (set(_as_dict(client.execute_command("LATENCY", "HISTOGRAM")))
                    for client in clients)
    assert ours == theirs


def test_latency_tracking_no_keeps_none(shared_server):
    client = redis.Redis(host="127.0.0.1", port=shared_server.port, socket_timeout=10)
    try:
        client.config_set("latency-tracking", "no")
        client.execute_command("CONFIG", "GET", "hz")
        assert not client.execute_command("LATENCY", "HISTOGRAM")
    finally:
        client.config_set("latency-tracking", "yes")
        client.close()
