"""Server health: a state machine fed by pings and by real requests.

:class:`HealthTracker` holds the state of every server and decides when each
should be probed; it has no threads. :class:`HealthMonitor` drives it from
daemon threads (one per server, so a hung server delays no other) with a
blocking ``ping(server, timeout)``; :class:`AsyncHealthMonitor` drives the
same tracker from asyncio tasks with an ``async ping(server, timeout)``.

State machine, per server::

    up --(failure_threshold consecutive failures)--> down
    down --(one success: ping or real request)--> up

* An up server is pinged every ``interval``; after a failure it is re-checked
  after ``interval / 2`` so a crash is declared within two intervals.
* A down server is probed with backoff: ``interval``, then doubling after
  every failed probe up to ``max_backoff`` (default ``8 * interval``).
* The client reports its requests too (``record_success`` /
  ``record_failure``): failures of requests count toward the threshold, and a
  successful request to a down server re-admits it at once.
"""
from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from typing import Any, Awaitable, Callable, Dict, List, Optional

from .ring import ServerSpec, parse_servers

__all__ = [
    "UP", "DOWN", "HealthTracker", "HealthMonitor", "AsyncHealthMonitor",
    "tcp_ping", "async_tcp_ping",
]

log = logging.getLogger("distcache.health")

UP = "up"
DOWN = "down"

StateCallback = Callable[[ServerSpec, str, str], Any]

_PING = b"*1\r\n$4\r\nPING\r\n"


def _check_reply(server: ServerSpec, reply: bytes) -> None:
    if not reply:
        raise ConnectionError(f"{server.address} closed the connection")
    if reply.startswith(b"-LOADING"):
        raise ConnectionError(f"{server.address} is loading its dataset")
    # +PONG, or an error such as -NOAUTH: the server is alive and serving.


def tcp_ping(server: ServerSpec, timeout: float) -> None:
    """Send a RESP PING over a fresh connection; raise unless it is answered."""
    with socket.create_connection((server.host, server.port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(_PING)
        _check_reply(server, sock.recv(128))


async def async_tcp_ping(server: ServerSpec, timeout: float) -> None:
    """The asyncio flavour of :func:`tcp_ping`."""
    async def _ping() -> None:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        try:
            writer.write(_PING)
            await writer.drain()
            _check_reply(server, await reader.read(128))
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:  # pragma: no cover
                pass
    await asyncio.wait_for(_ping(), timeout)


class _ServerState:
    __slots__ = ("server", "state", "latency", "consecutive_failures", "last_error",
                 "last_seen_up", "next_probe", "backoff")

    def __init__(self, server: ServerSpec, now: float) -> None:
        self.server = server
        self.state = UP
        self.latency: Optional[float] = None
        self.consecutive_failures = 0
        self.last_error: Optional[str] = None
        self.last_seen_up: Optional[float] = None
        self.next_probe = now
        self.backoff = 0.0


def _address(server: Any) -> str:
    return server.address if isinstance(server, ServerSpec) else str(server)


def _describe(exc: Any) -> str:
    if isinstance(exc, BaseException):
        text = str(exc)
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return str(exc)


class HealthTracker:
    """The health state of a set of servers; thread-safe, no threads of its own.

    ``clock`` (monotonic seconds) is injectable for tests; ``last_seen_up``
    in snapshots is wall-clock time (``time.time()``).
    """

    #: Weight of a new latency sample in the smoothed latency.
    LATENCY_ALPHA = 0.3

    def __init__(self, servers: Any, interval: float = 1.0, failure_threshold: int = 2,
                 max_backoff: Optional[float] = None,
                 on_state_change: Optional[StateCallback] = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        self.servers: List[ServerSpec] = parse_servers(servers)
        self.interval = float(interval)
        self.failure_threshold = int(failure_threshold)
        self.max_backoff = float(max_backoff) if max_backoff is not None else 8 * self.interval
        self.on_state_change = on_state_change
        self.clock = clock
        self._lock = threading.Lock()
        self._listeners: List[Callable[[], None]] = []
        now = clock()
        self._states: Dict[str, _ServerState] = {
            s.address: _ServerState(s, now) for s in self.servers}

    # -- reports -----------------------------------------------------------
    def _state(self, server: Any) -> _ServerState:
        try:
            return self._states[_address(server)]
        except KeyError:
            raise KeyError(f"unknown server {_address(server)}") from None

    def record_success(self, server: Any, latency: Optional[float] = None) -> None:
        """A ping or a request to ``server`` succeeded (in ``latency`` seconds)."""
        changed = None
        with self._lock:
            st = self._state(server)
            st.last_seen_up = time.time()
            if latency is not None:
                st.latency = (latency if st.latency is None else
                              st.latency + self.LATENCY_ALPHA * (latency - st.latency))
            wake = st.consecutive_failures != 0 or st.state != UP
            st.consecutive_failures = 0
            st.backoff = 0.0
            if st.state != UP:
                changed = (st.server, st.state, UP)
                st.state = UP
                st.last_error = None
            if wake:
                st.next_probe = self.clock() + self.interval
        if changed:
            self._changed(*changed, reason=f"answered in {_ms(latency)}")
        if wake:
            self._wake()

    def record_failure(self, server: Any, exc: Any = None) -> None:
        """A ping or a request to ``server`` failed with ``exc``."""
        changed = None
        with self._lock:
            st = self._state(server)
            now = self.clock()
            st.consecutive_failures += 1
            st.last_error = _describe(exc) if exc is not None else "failure"
            if st.state == UP:
                if st.consecutive_failures >= self.failure_threshold:
                    changed = (st.server, UP, DOWN)
                    st.state = DOWN
                    st.backoff = self.interval
                    st.next_probe = now + st.backoff
                else:  # suspect: check again soon
                    st.next_probe = min(st.next_probe, now + self.interval / 2)
            elif now >= st.next_probe:  # a failed probe of a down server
                st.backoff = min(max(st.backoff, self.interval) * 2, self.max_backoff)
                st.next_probe = now + st.backoff
        if changed:
            self._changed(*changed, reason=st.last_error)
        self._wake()

    # -- queries -------------------------------------------------------------
    def is_up(self, server: Any) -> bool:
        """True unless ``server`` has been declared down."""
        return self._state(server).state == UP

    def should_probe(self, server: Any) -> bool:
        """True when ``server`` may be tried: it is up, or a down server's
        backoff has expired (a success then re-admits it)."""
        st = self._state(server)
        return st.state == UP or self.clock() >= st.next_probe

    def next_probe_in(self, server: Any) -> float:
        """Seconds until ``server`` is due for a ping (<= 0: due now)."""
        return self._state(server).next_probe - self.clock()

    def schedule_next(self, server: Any) -> None:
        """After a ping of an up server: the next one is due one interval on
        (sooner while it is suspect); down servers keep their backoff."""
        with self._lock:
            st = self._state(server)
            if st.state == UP:
                delay = self.interval / 2 if st.consecutive_failures else self.interval
                st.next_probe = self.clock() + delay

    def up_servers(self) -> List[ServerSpec]:
        return [st.server for st in self._states.values() if st.state == UP]

    def snapshot(self) -> Dict[str, Dict[str, Any]]:
        """Per ``"host:port"``: state, latency (s), consecutive_failures,
        last_error and last_seen_up (wall-clock timestamp)."""
        with self._lock:
            return {
                address: {
                    "state": st.state,
                    "latency": st.latency,
                    "consecutive_failures": st.consecutive_failures,
                    "last_error": st.last_error,
                    "last_seen_up": st.last_seen_up,
                }
                for address, st in self._states.items()
            }

    # -- plumbing --------------------------------------------------------------
    def add_listener(self, wake: Callable[[], None]) -> None:
        """``wake()`` is called whenever probe schedules may have changed."""
        self._listeners.append(wake)

    def remove_listener(self, wake: Callable[[], None]) -> None:
        if wake in self._listeners:
            self._listeners.remove(wake)

    def _wake(self) -> None:
        for wake in list(self._listeners):
            try:
                wake()
            except Exception:  # pragma: no cover - a closed loop, etc.
                pass

    def _changed(self, server: ServerSpec, old: str, new: str, reason: Optional[str]) -> None:
        if new == DOWN:
            log.warning("server %s is DOWN (%s)", server.address, reason)
        else:
            log.info("server %s is UP again (%s)", server.address, reason)
        if self.on_state_change is not None:
            try:
                self.on_state_change(server, old, new)
            except Exception:
                log.exception("on_state_change callback failed for %s", server.address)


def _ms(latency: Optional[float]) -> str:
    return "?" if latency is None else f"{latency * 1000:.1f} ms"


class _MonitorBase:
    """What both monitors share: construction and delegation to the tracker."""

    def __init__(self, servers: Any, ping: Any = None, interval: float = 1.0,
                 failure_threshold: int = 2, timeout: Optional[float] = None,
                 on_state_change: Optional[StateCallback] = None,
                 max_backoff: Optional[float] = None,
                 tracker: Optional[HealthTracker] = None) -> None:
        self.tracker = tracker or HealthTracker(
            servers, interval=interval, failure_threshold=failure_threshold,
            max_backoff=max_backoff, on_state_change=on_state_change)
        self.servers = self.tracker.servers
        self.interval = self.tracker.interval
        self.failure_threshold = self.tracker.failure_threshold
        #: Ping timeout; by default one interval.
        self.timeout = float(timeout) if timeout is not None else self.interval
        self.ping = ping

    def _record(self, spec: ServerSpec, started: float, exc: Optional[BaseException]) -> bool:
        """Record a ping's outcome and schedule the next one."""
        if exc is None:
            self.tracker.record_success(spec, time.monotonic() - started)
        else:
            self.tracker.record_failure(spec, exc)
        self.tracker.schedule_next(spec)
        return exc is None

    def record_success(self, server: Any, latency: Optional[float] = None) -> None:
        self.tracker.record_success(server, latency)

    def record_failure(self, server: Any, exc: Any = None) -> None:
        self.tracker.record_failure(server, exc)

    def is_up(self, server: Any) -> bool:
        return self.tracker.is_up(server)

    def should_probe(self, server: Any) -> bool:
        return self.tracker.should_probe(server)

    def up_servers(self) -> List[ServerSpec]:
        return self.tracker.up_servers()

    def snapshot(self) -> Dict[str, Dict[str, Any]]:
        return self.tracker.snapshot()


class HealthMonitor(_MonitorBase):
    """Pings every server from daemon threads; ``ping(server, timeout)`` raises
    on failure (default: :func:`tcp_ping`)."""

    def __init__(self, servers: Any, ping: Optional[Callable[[ServerSpec, float], Any]] = None,
                 interval: float = 1.0, failure_threshold: int = 2,
                 timeout: Optional[float] = None,
                 on_state_change: Optional[StateCallback] = None,
                 max_backoff: Optional[float] = None,
                 tracker: Optional[HealthTracker] = None) -> None:
        super().__init__(servers, ping or tcp_ping, interval, failure_threshold, timeout,
                         on_state_change, max_backoff, tracker)
        self._cond = threading.Condition()
        self._stopping = False
        self._threads: List[threading.Thread] = []

    def _notify(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def start(self) -> "HealthMonitor":
        if self._threads:
            return self
        self._stopping = False
        self.tracker.add_listener(self._notify)
        for server in self.servers:
            thread = threading.Thread(target=self._run, args=(server,), daemon=True,
                                      name=f"distcache-health-{server.address}")
            self._threads.append(thread)
            thread.start()
        return self

    def stop(self, timeout: Optional[float] = None) -> None:
        """Stop the threads and wait for them (a ping in flight ends by its timeout)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self.tracker.remove_listener(self._notify)
        wait = self.timeout + 1.0 if timeout is None else timeout
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(wait)
        self._threads = []

    def __enter__(self) -> "HealthMonitor":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def check(self, server: Any) -> bool:
        """Ping ``server`` now, record the outcome, return whether it answered."""
        spec, started = self.tracker._state(server).server, time.monotonic()
        try:
            self.ping(spec, self.timeout)
        except Exception as exc:
            return self._record(spec, started, exc)
        return self._record(spec, started, None)

    def _run(self, server: ServerSpec) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    delay = self.tracker.next_probe_in(server)
                    if delay <= 0:
                        break
                    self._cond.wait(delay)
                if self._stopping:
                    return
            try:
                self.check(server)
            except Exception:  # pragma: no cover - a bug; keep monitoring
                log.exception("health check of %s failed", server.address)
                time.sleep(self.interval)


class AsyncHealthMonitor(_MonitorBase):
    """Pings every server from asyncio tasks; ``await ping(server, timeout)``
    raises on failure (default: :func:`async_tcp_ping`).

    ``start()`` needs a running event loop; ``stop()`` cancels the tasks and
    returns an awaitable that waits for them (awaiting it is optional).
    """

    def __init__(self, servers: Any,
                 ping: Optional[Callable[[ServerSpec, float], Awaitable[Any]]] = None,
                 interval: float = 1.0, failure_threshold: int = 2,
                 timeout: Optional[float] = None,
                 on_state_change: Optional[StateCallback] = None,
                 max_backoff: Optional[float] = None,
                 tracker: Optional[HealthTracker] = None) -> None:
        super().__init__(servers, ping or async_tcp_ping, interval, failure_threshold, timeout,
                         on_state_change, max_backoff, tracker)
        self._tasks: List["asyncio.Task[None]"] = []
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._events: Dict[str, asyncio.Event] = {}
        self._stopping = False

    def _notify(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        for event in self._events.values():
            loop.call_soon_threadsafe(event.set)

    def start(self) -> "AsyncHealthMonitor":
        if self._tasks:
            return self
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        self.tracker.add_listener(self._notify)
        for server in self.servers:
            self._events[server.address] = asyncio.Event()
            self._tasks.append(self._loop.create_task(
                self._run(server), name=f"distcache-health-{server.address}"))
        return self

    def stop(self) -> "_Stopped":
        self._stopping = True
        self.tracker.remove_listener(self._notify)
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        return _Stopped(tasks, self.timeout + 1.0)

    async def __aenter__(self) -> "AsyncHealthMonitor":
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def check(self, server: Any) -> bool:
        """Ping ``server`` now, record the outcome, return whether it answered."""
        spec, started = self.tracker._state(server).server, time.monotonic()
        try:
            await self.ping(spec, self.timeout)
        except Exception as exc:  # CancelledError is not an Exception: it propagates
            return self._record(spec, started, exc)
        return self._record(spec, started, None)

    async def _run(self, server: ServerSpec) -> None:
        event = self._events[server.address]
        # The flag as well as cancellation: asyncio.wait_for before 3.12 can
        # swallow a cancel that races with its inner awaitable finishing.
        while not self._stopping:
            delay = self.tracker.next_probe_in(server)
            if delay > 0:
                event.clear()
                try:
                    await asyncio.wait_for(event.wait(), delay)
                except asyncio.TimeoutError:
                    pass
                continue
            try:
                await self.check(server)
            except asyncio.CancelledError:
                raise
            except Exception:  # pragma: no cover - a bug; keep monitoring
                log.exception("health check of %s failed", server.address)
                await asyncio.sleep(self.interval)


class _Stopped:
    """Awaitable returned by :meth:`AsyncHealthMonitor.stop`."""

    def __init__(self, tasks: List["asyncio.Task[None]"], timeout: float) -> None:
        self._tasks = tasks
        self._timeout = timeout

    def __await__(self):  # type: ignore[no-untyped-def]
        if self._tasks:  # bounded: a task that ignores its cancel is left behind
            yield from asyncio.wait(self._tasks, timeout=self._timeout).__await__()
        return None
