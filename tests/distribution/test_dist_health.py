"""Health monitoring: the state machine with a fake clock, both monitors with a
fake ping, and the thread/asyncio monitors against real server processes."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest

from distcache.client.health import (DOWN, UP, AsyncHealthMonitor, HealthMonitor, HealthTracker,
                                     async_tcp_ping, tcp_ping)
from distcache.client.ring import ServerSpec
from dist_helpers import async_wait_until, wait_until
from servers import distcache_server, free_port

A, B = "127.0.0.1:7001", "127.0.0.1:7002"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- the state machine ---------------------------------------------------------------
def test_tracker_goes_down_after_threshold_and_up_on_success():
    clock, changes = Clock(), []
    tracker = HealthTracker([A, B], interval=1.0, failure_threshold=2, clock=clock,
                            on_state_change=lambda s, o, n: changes.append((s.address, o, n)))
    assert tracker.is_up(A) and tracker.snapshot()[A]["latency"] is None
    tracker.record_failure(A, ConnectionRefusedError("refused"))
    snap = tracker.snapshot()[A]
    assert snap["state"] == UP and snap["consecutive_failures"] == 1
    assert snap["last_error"] == "ConnectionRefusedError: refused"
    assert tracker.next_probe_in(A) <= 0.5  # suspect: re-checked within half an interval
    tracker.record_failure(A, OSError("again"))
    assert not tracker.is_up(A) and tracker.is_up(B)
    assert changes == [(A, UP, DOWN)]
    assert tracker.up_servers() == [ServerSpec("127.0.0.1", 7002)]
    tracker.record_success(A, 0.002)
    snap = tracker.snapshot()[A]
    assert snap["state"] == UP and snap["consecutive_failures"] == 0
    assert snap["latency"] == pytest.approx(0.002) and snap["last_seen_up"] is not None
    assert snap["last_error"] is None
    assert changes == [(A, UP, DOWN), (A, DOWN, UP)]


def test_tracker_success_resets_the_failure_count():
    tracker = HealthTracker([A], failure_threshold=3, clock=Clock())
    for _ in range(5):
        tracker.record_failure(A, "x")
        tracker.record_failure(A, "x")
        tracker.record_success(A, 0.001)
    assert tracker.is_up(A)


def test_tracker_backoff_doubles_up_to_the_cap():
    clock = Clock()
    tracker = HealthTracker([A], interval=1.0, failure_threshold=1, max_backoff=5.0, clock=clock)
    tracker.record_failure(A, "down")
    assert not tracker.is_up(A)
    gaps = []
    for _ in range(6):
        assert not tracker.should_probe(A)
        gap = tracker.next_probe_in(A)
        gaps.append(gap)
        clock.now += gap
        assert tracker.should_probe(A)
        tracker.record_failure(A, "still down")
    assert gaps == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    # Failures reported between probes (e.g. by requests) do not push the backoff.
    clock.now += 1.0
    tracker.record_failure(A, "request failed")
    assert tracker.next_probe_in(A) == pytest.approx(4.0)
    clock.now += 4.0
    tracker.record_success(A, 0.001)
    assert tracker.is_up(A) and tracker.next_probe_in(A) == pytest.approx(1.0)


def test_tracker_latency_is_smoothed_and_callback_errors_are_contained(caplog):
    def broken(*args):
        raise RuntimeError("callback bug")
    tracker = HealthTracker([A], failure_threshold=1, on_state_change=broken, clock=Clock())
    tracker.record_success(A, 0.010)
    tracker.record_success(A, 0.020)
    assert 0.010 < tracker.snapshot()[A]["latency"] < 0.020
    with caplog.at_level("WARNING", logger="distcache.health"):
        tracker.record_failure(A, "boom")
    assert not tracker.is_up(A)
    assert any("DOWN" in r.getMessage() for r in caplog.records)
    assert any("callback" in r.getMessage() for r in caplog.records)


def test_tracker_rejects_unknown_servers_and_bad_settings():
    tracker = HealthTracker([A], clock=Clock())
    with pytest.raises(KeyError):
        tracker.is_up(B)
    with pytest.raises(ValueError):
        HealthTracker([A], interval=0)
    with pytest.raises(ValueError):
        HealthTracker([A], failure_threshold=0)


# -- monitors with a fake ping ----------------------------------------------------------
class FakeServers:
    """ping() fails for the addresses in ``dead``; counts calls."""

    def __init__(self) -> None:
        self.dead = set()
        self.calls = {}
        self.lock = threading.Lock()

    def ping(self, server, timeout):
        with self.lock:
            self.calls[server.address] = self.calls.get(server.address, 0) + 1
        if server.address in self.dead:
            raise ConnectionRefusedError(f"{server.address} refused")

    async def aping(self, server, timeout):
        self.ping(server, timeout)


def test_thread_monitor_with_fake_ping():
    fake, changes = FakeServers(), []
    monitor = HealthMonitor([A, B], fake.ping, interval=0.05, failure_threshold=2,
                            on_state_change=lambda s, o, n: changes.append((s.address, n)))
    with monitor:
        assert wait_until(lambda: fake.calls.get(A, 0) >= 2 and fake.calls.get(B, 0) >= 2)
        assert monitor.snapshot()[A]["latency"] is not None
        fake.dead.add(A)
        assert wait_until(lambda: not monitor.is_up(A))
        assert monitor.is_up(B)
        fake.dead.clear()
        assert wait_until(lambda: monitor.is_up(A))
    assert changes == [(A, DOWN), (A, UP)]
    calls = dict(fake.calls)
    time.sleep(0.15)  # stopped: no more pings
    assert fake.calls == calls


def test_thread_monitor_counts_request_failures():
    fake = FakeServers()
    monitor = HealthMonitor([A], fake.ping, interval=30.0, failure_threshold=2)
    with monitor:
        assert wait_until(lambda: fake.calls.get(A, 0) == 1)
        monitor.record_failure(A, TimeoutError("request timed out"))
        monitor.record_failure(A, TimeoutError("request timed out"))
        assert not monitor.is_up(A)
        monitor.record_success(A, 0.001)  # a request got through: re-admitted at once
        assert monitor.is_up(A)


def test_async_monitor_with_fake_ping():
    async def main():
        fake, changes = FakeServers(), []
        monitor = AsyncHealthMonitor([A, B], fake.aping, interval=0.05, failure_threshold=2,
                                     on_state_change=lambda s, o, n: changes.append((s.address, n)))
        monitor.start()
        try:
            assert await async_wait_until(lambda: fake.calls.get(A, 0) >= 2)
            fake.dead.add(A)
            assert await async_wait_until(lambda: not monitor.is_up(A))
            assert monitor.is_up(B)
            fake.dead.clear()
            assert await async_wait_until(lambda: monitor.is_up(A))
        finally:
            await monitor.stop()
        assert changes == [(A, DOWN), (A, UP)]
        assert all(task.done() for task in monitor._tasks) and monitor._tasks == []
    asyncio.run(main())


# -- real servers ---------------------------------------------------------------------
def test_pings_against_a_real_server(server):
    spec = ServerSpec("127.0.0.1", server.port)
    tcp_ping(spec, 2.0)
    asyncio.run(async_tcp_ping(spec, 2.0))
    with pytest.raises(OSError):
        tcp_ping(ServerSpec("127.0.0.1", free_port()), 2.0)


INTERVAL = 0.3


def _servers(tmp_path, count):
    return [distcache_server(tmp_path / f"n{i}") for i in range(count)]


class ProbeLog:
    """Consecutive failed probes per address, and their number at each state change:
    "down at the threshold's failed probe" without a wall-clock bound (a loaded host
    delays every probe alike; the cadence itself is HealthTracker's, tested above)."""

    def __init__(self, ping):
        self.ping = ping
        self.failing = {}
        self.changes = []

    def _outcome(self, spec, failed):
        self.failing[spec.address] = self.failing.get(spec.address, 0) + 1 if failed else 0

    def wrap(self, spec, timeout):
        try:
            reply = self.ping(spec, timeout)
        except Exception:
            self._outcome(spec, True)
            raise
        self._outcome(spec, False)
        return reply

    async def wrap_async(self, spec, timeout):
        try:
            reply = await self.ping(spec, timeout)
        except Exception:
            self._outcome(spec, True)
            raise
        self._outcome(spec, False)
        return reply

    def changed(self, spec, old, new):
        self.changes.append((spec.address, new, self.failing.get(spec.address, 0)))

    def first_down(self, address):
        """The first DOWN change of ``address``, waited for: the monitor's state
        turns before its thread calls ``on_state_change``."""
        def found():
            return next((c for c in self.changes if c[0] == address and c[1] == DOWN), None)
        assert wait_until(found, timeout=5), "no DOWN change reported"
        return found()


def test_thread_monitor_detects_a_killed_server_and_readmits_it(tmp_path):
    procs = [p.start() for p in _servers(tmp_path, 2)]
    try:
        addresses = [p.address for p in procs]
        probes = ProbeLog(tcp_ping)
        monitor = HealthMonitor(addresses, ping=probes.wrap, interval=INTERVAL,
                                failure_threshold=2, on_state_change=probes.changed)
        with monitor:
            assert wait_until(lambda: all(monitor.snapshot()[a]["latency"] for a in addresses))
            procs[0].kill()
            assert wait_until(lambda: not monitor.is_up(addresses[0]), timeout=5)
            assert probes.first_down(addresses[0])[2] == 2  # at the 2nd failed probe in a row
            snap = monitor.snapshot()
            assert snap[addresses[0]]["state"] == "down" and snap[addresses[0]]["last_error"]
            assert snap[addresses[1]]["state"] == "up"
            procs[0].start()
            assert wait_until(lambda: monitor.is_up(addresses[0]), timeout=15)
    finally:
        for p in procs:
            p.stop()


def test_async_monitor_detects_a_killed_server_and_readmits_it(tmp_path):
    procs = [p.start() for p in _servers(tmp_path, 2)]

    async def main():
        addresses = [p.address for p in procs]
        probes = ProbeLog(async_tcp_ping)
        async with AsyncHealthMonitor(addresses, ping=probes.wrap_async, interval=INTERVAL,
                                      on_state_change=probes.changed) as monitor:
            snapshot = monitor.snapshot
            assert await async_wait_until(lambda: all(snapshot()[a]["latency"] for a in addresses))
            procs[0].kill()
            assert await async_wait_until(lambda: not monitor.is_up(addresses[0]), 5)
            assert probes.first_down(addresses[0])[2] == 2  # the default threshold
            assert monitor.is_up(addresses[1])
            await asyncio.get_running_loop().run_in_executor(None, procs[0].start)
            assert await async_wait_until(lambda: monitor.is_up(addresses[0]), 15)
    try:
        asyncio.run(main())
    finally:
        for p in procs:
            p.stop()
