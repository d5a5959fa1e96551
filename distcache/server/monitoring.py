"""MONITOR, the slow log and the latency monitor: what watches commands run.

The dispatcher knows nothing of them. While any of them needs to see
commands, the handlers in the command table are wrapped (:func:`refresh`),
and the wrapper times the call, records it and feeds MONITOR clients; when
none does, the table holds the plain handlers and commands pay nothing.

Timing every command would cost a pipelined GET or SET a few percent, so the
slow log at its default threshold (10 ms) times only the commands that can be
slow: those without Redis's ``fast`` flag and without a run handler (GET, SET,
INCR, DECR's plain forms are O(1); SETBIT and PFCOUNT are timed outside
their runs); EVALSHA, which has a run handler for pipelines, times itself then
(:data:`self_timing`). Below :data:`TIME_ALL_BELOW_US`, with the
latency monitor on, with a MONITOR client connected, or while clients are
paused, every command is wrapped (and run handlers are off). The table is
shared by every server of a process, so the wrapping is the widest any of
them needs; a wrapper checks its own server's settings.

LATENCY HISTOGRAM's per-command histograms (``latency-tracking yes``, the
default) are filled from the same timing, so they see the commands that are
timed: at the default slow log threshold every command but the O(1) ones
above, and every command while everything is timed. Buckets are powers of
two in whole µs, labelled as Redis's HDR histogram's log iterator labels its
own (power-of-two multiples of 1024 ns); a second or more is the last.
"""
from __future__ import annotations

import logging
import time
import weakref
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

from ..protocol import Status
from .commands.table import CommandSpec, set_layer

log = logging.getLogger("distcache.server")

#: A slow log threshold under this (µs) times every command, fast ones included.
TIME_ALL_BELOW_US = 10000
#: As Redis's SLOWLOG_ENTRY_MAX_ARGC and SLOWLOG_ENTRY_MAX_STRING.
MAX_ARGS = 32
MAX_STRING = 128
#: Samples kept per latency event (Redis's LATENCY_TS_LEN).
LATENCY_SAMPLES = 160
#: Script commands whose MONITOR line comes before the commands they run.
_SCRIPT_RUNNERS = frozenset(["eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"])

NONE, SLOW, ALL = 0, 1, 2
#: Histogram buckets: bucket k holds durations under 2^k µs (1 s and more in the last).
BUCKETS = 21
#: Each bucket's label in µs, as Redis's: its highest equivalent value at HDR's
#: two significant digits (1, 2, 4, 8, 16, 33, 66, 132 ...).
BUCKET_USEC = [(1024 << k) * 129 // 128 // 1000 for k in range(BUCKETS)]

#: Every live server's Monitoring, to take the widest wrapping any needs (a stopped
#: server's goes with it; its monitors went with their connections).
_instances: "weakref.WeakSet[Monitoring]" = weakref.WeakSet()
_mode = NONE
#: Whether commands with a run handler that are not O(1) (EVALSHA) time themselves:
#: the slow log at its default threshold does not wrap them, to keep their run
#: handlers (scripting/evalsha.py); they call :meth:`Monitoring.record`.
self_timing = False


#: Commands with a run handler whose other forms can take long (PFCOUNT of many
#: keys, SETBIT's allocation for a far offset): at the default threshold the slow
#: log times their general path, not their runs (plain, O(1) forms).
_TIMED_OUTSIDE_RUNS = frozenset(["pfcount", "setbit"])


def _exempt(spec: CommandSpec) -> bool:
    """Commands the slow log at its default threshold does not wrap: O(1) ones, and
    those with a run handler (EVALSHA's times itself, see :data:`self_timing`) but
    for :data:`_TIMED_OUTSIDE_RUNS`."""
    return "fast" in spec.flags or (spec.base_run_handler is not None
                                    and spec.name not in _TIMED_OUTSIDE_RUNS)


def refresh() -> None:
    """Wrap the table's handlers as widely as the live servers need, or unwrap them."""
    global _mode, self_timing
    mode = max((m.mode() for m in list(_instances)), default=NONE)
    if mode == _mode:
        return
    _mode = mode
    self_timing = mode == SLOW

    def wrap(spec: CommandSpec, handler: Any) -> Any:
        if mode == SLOW:
            if _exempt(spec):
                return None
            if spec.base_run_handler is not None:  # its runs stay untimed
                timed = _wrap(spec, handler)
                timed.keeps_runs = True  # type: ignore[attr-defined]
                return timed
        return _wrap(spec, handler)
    set_layer("monitoring", 30, None if mode == NONE else wrap)


def _wrap(spec: CommandSpec, plain: Callable[[Any, List[bytes]], Any]) -> Callable[..., Any]:
    flags = spec.flags | (spec.parent.flags if spec.parent is not None else frozenset())
    shown = not ({"skip_monitor", "admin"} & flags)
    first = (spec.parent or spec).name in _SCRIPT_RUNNERS
    logged = "skip_slowlog" not in flags
    event = "fast-command" if "fast" in spec.flags else "command"
    fullname = spec.fullname

    def handler(c: Any, args: List[bytes]) -> Any:
        server = c.server
        m = server.monitoring
        pause = server.pause
        if pause.mode is not None and not c.in_exec and pause.holds(spec, c):
            return pause.park(c, args)
        if first and m.monitors:
            m.feed(c, args)
        start = time.perf_counter()
        try:
            return plain(c, args)
        finally:
            if not server.loading:
                usec = int((time.perf_counter() - start) * 1000000)
                if m.histograms is not None:
                    _count(m.histograms, fullname, usec)
                if logged and 0 <= m.slower_than <= usec and c is not m.script_client():
                    m.slowlog_add(c, args, usec)
                if m.latency_threshold and usec >= m.latency_threshold * 1000:
                    m.latency_add(event, usec // 1000)
                if shown and m.monitors:
                    m.feed(c, args)

    handler.__doc__ = plain.__doc__
    handler.__wrapped__ = plain  # type: ignore[attr-defined]
    return handler


def _count(histograms: Dict[str, List[int]], fullname: str, usec: int) -> None:
    """One call of ``usec`` in its command's LATENCY HISTOGRAM."""
    counts = histograms.get(fullname)
    if counts is None:
        counts = histograms[fullname] = [0] * BUCKETS
    # Whole µs: bucket k holds [2^(k-1), 2^k) µs, about Redis's
    # (1.024 * 2^(k-1), 1.024 * 2^k] at a fraction of the cost.
    bucket = usec.bit_length()
    counts[bucket if bucket < BUCKETS else BUCKETS - 1] += 1


def redacted(args: List[bytes]) -> List[bytes]:
    """Arguments as MONITOR and the slow log show them: passwords hidden, as Redis."""
    name = args[0].lower()
    if name == b"auth":
        return args[:1] + [b"(redacted)"] * (len(args) - 1)
    if name == b"hello":
        shown = list(args)
        for i in range(2, len(args) - 2):
            if args[i].upper() == b"AUTH":
                shown[i + 1] = shown[i + 2] = b"(redacted)"
        return shown
    if name == b"migrate":
        shown = list(args)
        for i in range(6, len(args)):
            word = args[i].upper()
            if word == b"AUTH" and i + 1 < len(args):
                shown[i + 1] = b"(redacted)"
            elif word == b"AUTH2" and i + 2 < len(args):
                shown[i + 1] = shown[i + 2] = b"(redacted)"
        return shown
    return args


_ESCAPES = {ord("\\"): b"\\\\", ord('"'): b'\\"', ord("\n"): b"\\n", ord("\r"): b"\\r",
            ord("\t"): b"\\t", 7: b"\\a", 8: b"\\b"}


def quoted(arg: bytes) -> bytes:
    """Redis's sdscatrepr: printable bytes as they are, the rest escaped."""
    out = [b'"']
    for byte in arg:
        esc = _ESCAPES.get(byte)
        if esc is not None:
            out.append(esc)
        elif 32 <= byte < 127:
            out.append(bytes((byte,)))
        else:
            out.append(b"\\x%02x" % byte)
    out.append(b'"')
    return b"".join(out)


class Monitoring:
    """One server's MONITOR clients, slow log and latency events."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.monitors: List[Any] = []
        self.slowlog: Deque[List[Any]] = deque(maxlen=128)
        self.slowlog_next_id = 0
        self.slower_than = 10000
        self.latency_threshold = 0
        #: event -> samples [(unix time, ms)], and its all-time max.
        self.latency: Dict[str, Deque[Tuple[int, int]]] = {}
        self.latency_max: Dict[str, int] = {}
        #: command full name -> counts per bucket (LATENCY HISTOGRAM); None: not kept.
        self.histograms: Optional[Dict[str, List[int]]] = {}
        _instances.add(self)
        self.configure()

    def mode(self) -> int:
        if self.server.pause.mode is not None or self.monitors or self.latency_threshold:
            return ALL
        if self.slower_than < 0:
            return NONE
        return ALL if self.slower_than < TIME_ALL_BELOW_US else SLOW

    def configure(self, name: str = "") -> None:
        config = self.server.config
        self.slower_than = config["slowlog-log-slower-than"]
        self.latency_threshold = config["latency-monitor-threshold"]
        tracking = config.foreign.get("latency-tracking", "yes").lower() == "yes"
        if not tracking:
            self.histograms = None
        elif self.histograms is None:
            self.histograms = {}
        limit = config["slowlog-max-len"]
        if self.slowlog.maxlen != limit:
            # deque's maxlen is fixed: keep the newest entries that fit
            self.slowlog = deque(list(self.slowlog)[-limit:] if limit else [],
                                 maxlen=min(limit, 2 ** 31))
        refresh()

    def script_client(self) -> Any:
        engine = self.server.__dict__.get("_script_engine")  # scripting.engine()
        return engine.client if engine is not None else None

    # -- MONITOR --------------------------------------------------------------

    def add_monitor(self, c: Any) -> None:
        if c not in self.monitors:
            self.monitors.append(c)
            refresh()

    def drop_monitor(self, c: Any) -> None:
        if c in self.monitors:
            self.monitors.remove(c)
            refresh()

    def feed(self, c: Any, args: List[bytes]) -> None:
        """Send one command line to every MONITOR client."""
        now = time.time()
        origin = b"lua" if c is self.script_client() else c.addr.encode()
        line = b"%d.%06d [%d %s] %s" % (int(now), int(now % 1 * 1000000), c.db.id, origin,
                                        b" ".join(quoted(a) for a in redacted(args)))
        for monitor in list(self.monitors):
            if monitor.closed:
                continue
            if monitor is c:  # after its own reply, which the dispatcher adds next
                self.server.loop.call_soon(monitor.send, Status(line))
            else:
                monitor.send(Status(line))

    # -- the slow log ------------------------------------------------------------

    def slowlog_add(self, c: Any, args: List[bytes], usec: int) -> None:
        if not self.slowlog.maxlen:
            return
        shown = redacted(args)
        argv = []
        for i, arg in enumerate(shown[:MAX_ARGS]):
            if i == MAX_ARGS - 1 and len(shown) > MAX_ARGS:
                argv.append(b"... (%d more arguments)" % (len(shown) - MAX_ARGS + 1))
            elif len(arg) > MAX_STRING:
                argv.append(arg[:MAX_STRING] + b"... (%d more bytes)" % (len(arg) - MAX_STRING))
            else:
                argv.append(bytes(arg))
        self.slowlog.appendleft([self.slowlog_next_id, int(time.time()), usec, argv,
                                 c.addr.encode(), c.name])
        self.slowlog_next_id += 1

    def record(self, c: Any, fullname: str, args: List[bytes], usec: int) -> None:
        """A call a self-timed command timed (:data:`self_timing`): what the slow
        log's wrapper records (no MONITOR or latency event then: those wrap all)."""
        if self.histograms is not None:
            _count(self.histograms, fullname, usec)
        if 0 <= self.slower_than <= usec:
            self.slowlog_add(c, args, usec)

    # -- the latency monitor -------------------------------------------------------

    def latency_add(self, event: str, ms: int) -> None:
        now = int(time.time())
        samples = self.latency.get(event)
        if samples is None:
            samples = self.latency[event] = deque(maxlen=LATENCY_SAMPLES)
        if samples and samples[-1][0] == now:  # one sample a second: its max
            samples[-1] = (now, max(ms, samples[-1][1]))
        else:
            samples.append((now, ms))
        self.latency_max[event] = max(self.latency_max.get(event, 0), ms)


    def histogram(self, fullname: str) -> Optional[Dict[bytes, Any]]:
        """One command's LATENCY HISTOGRAM entry: calls, and the cumulative count at each
        bucket where it grows (Redis's fillCommandCDF); None without samples."""
        counts = (self.histograms or {}).get(fullname)
        if counts is None:
            return None
        buckets: Dict[int, int] = {}
        total = 0
        for label, count in zip(BUCKET_USEC, counts):
            if count:
                total += count
                buckets[label] = total
        return {b"calls": total, b"histogram_usec": buckets}


def install(server: Any) -> Monitoring:
    """Create the server's monitoring state and keep it in step with CONFIG SET."""
    monitoring = server.monitoring = Monitoring(server)
    server.config_hooks.append(monitoring.configure)
    server.disconnect_hooks.append(monitoring.drop_monitor)
    server.reset_hooks.append(monitoring.drop_monitor)
    return monitoring
