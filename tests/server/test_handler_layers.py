"""Features that change the command table while they are on (keyspace events, the
slow log and MONITOR) compose: turning one on or off in any order leaves the
others working, and with all off every command is back on its plain handlers."""
from __future__ import annotations

import pytest
import redis

from distcache.server.commands.table import COMMANDS, set_layer
from servers import as_map, distcache_server, wait_until


@pytest.fixture
def server(tmp_path):
    proc = distcache_server(tmp_path).start()
    yield proc
    proc.stop()


def _event_arrives(r: redis.Redis, key: str) -> bool:
    sub = r.pubsub()
    sub.psubscribe("__keyevent@0__:set")
    wait_until(lambda: sub.get_message(timeout=0.1) is not None, 5)
    r.set(key, "v")
    message = wait_until(lambda: sub.get_message(timeout=0.1), 5)
    sub.close()
    return message["data"] == key.encode()


def _slow_logged(r: redis.Redis, key: str) -> bool:
    r.slowlog_reset()
    r.set(key, "v")
    return any(entry["command"] == f"SET {key} v".encode() for entry in r.slowlog_get(10))


def test_events_and_the_slow_log_turn_on_and_off_in_any_order(server):
    r = redis.Redis(port=server.port)
    r.config_set("notify-keyspace-events", "E$")
    r.config_set("slowlog-log-slower-than", 0)
    assert _event_arrives(r, "both-on") and _slow_logged(r, "both-on")
    r.config_set("notify-keyspace-events", "")  # events off first: the slow log stays
    assert _slow_logged(r, "slowlog-only")
    r.config_set("notify-keyspace-events", "E$")
    r.config_set("slowlog-log-slower-than", 10000)  # the slow log off first: events stay
    assert _event_arrives(r, "events-only")
    assert not _slow_logged(r, "events-only")
    r.config_set("notify-keyspace-events", "")
    assert r.get("events-only") == b"v"


def test_layers_rebuild_from_the_registered_handlers():
    spec = COMMANDS["set"]
    plain, run = spec.base_handler, spec.base_run_handler
    assert run is not None

    def outer(s, handler):
        return (lambda c, args: ("outer", handler(c, args))) if s is spec else None

    def inner(s, handler):
        return (lambda c, args: "inner") if s is spec else None
    try:
        set_layer("outer", 2, outer)
        set_layer("inner", 1, inner)
        assert spec.handler(None, []) == ("outer", "inner") and spec.run_handler is None
        set_layer("outer", 2, None)
        assert spec.handler(None, []) == "inner"
    finally:
        set_layer("inner", 1, None)
        set_layer("outer", 2, None)
    assert spec.handler is plain and spec.run_handler is run
    assert COMMANDS["get"].handler is COMMANDS["get"].base_handler


def test_a_layer_may_keep_the_run_handler(monkeypatch):
    """A layered handler marked ``keeps_runs`` leaves the run handler in place."""
    from distcache.server.commands import table
    spec = COMMANDS["setbit"]
    plain, run = spec.base_handler, spec.base_run_handler
    assert run is not None

    def keeping(s, handler):
        if s is not spec:
            return None
        layered = lambda c, args: ("kept", handler(c, args))  # noqa: E731
        layered.keeps_runs = True
        return layered
    # Without the layers other tests' in-process servers may have left on.
    with monkeypatch.context() as patch:
        patch.setattr(table, "_LAYERS", {})
        try:
            set_layer("keeping", 1, keeping)
            assert spec.handler is not plain and spec.run_handler is run
            set_layer("dropping", 2,
                      lambda s, handler: (lambda c, args: handler(c, args)) if s is spec else None)
            assert spec.run_handler is None  # one layer that does not keep it is enough
            set_layer("dropping", 2, None)
            set_layer("keeping", 1, None)
            assert spec.handler is plain and spec.run_handler is run
        finally:
            table._LAYERS.clear()
    set_layer("rebuild", 99, lambda s, handler: None)  # the handlers of the layers left on
    set_layer("rebuild", 99, None)


def _calls(r: redis.Redis, name: str) -> int:
    reply = as_map(r.execute_command("LATENCY", "HISTOGRAM", name))  # RESP2: a list
    entry = reply.get(name) or reply.get(name.encode()) if reply else None
    if not entry:
        return 0
    entry = as_map(entry)
    return entry.get("calls", entry.get(b"calls"))


def test_the_default_slow_log_times_setbit_and_pfcount_outside_runs(server):
    """At the default threshold SETBIT and PFCOUNT are timed (LATENCY HISTOGRAM
    counts them) when they come alone or in their other forms, and not in
    pipelined runs of their plain forms."""
    r = redis.Redis(port=server.port)
    r.pfadd("h1", "a")
    r.pfadd("h2", "b")
    assert r.pfcount("h1", "h2") == 2 and r.pfcount("h1") == 1
    r.setbit("b", 3, 1)
    assert _calls(r, "pfcount") == 2 and _calls(r, "setbit") == 1
    pipe = r.pipeline(transaction=False)
    for i in range(20):
        pipe.pfcount("h1")
    for i in range(20):
        pipe.setbit("b", i, 1)
    pipe.execute()
    # A request the network splits off alone is timed; most of the runs are not.
    assert 2 <= _calls(r, "pfcount") < 22 and 1 <= _calls(r, "setbit") < 21
